import numpy as np
import pytest
import torch

from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.evaluate import best_permutation, bounds, bss_eval, oracle_irm, score


@pytest.fixture(scope="module")
def pairs(smoke_corpus):
    return fixed_pairs(load_embedded(smoke_corpus, "test"), 4)


def test_fast_and_mir_eval_agree_on_real_separations(pairs):
    estimates = oracle_irm(pairs, 510, 128)
    refs = pairs.sources[:, 0]
    fast = bss_eval(estimates[:2], refs[:2], "fast")
    ref = bss_eval(estimates[:2], refs[:2], "mir_eval")
    for key in ("sdr", "sir", "sar"):
        assert np.abs(fast[key] - ref[key]).max() < 0.01, key


def test_oracle_mask_beats_the_mixture(pairs):
    b = bounds(pairs, 510, 128)
    assert b["oracle_irm"]["sdr"] > b["mixture"]["sdr"] + 5
    assert b["mixture"]["sdri"] == pytest.approx(0, abs=1e-6)


def test_score_reports_per_class(pairs):
    result = score(oracle_irm(pairs, 510, 128), pairs)
    assert result["pairs"] == 4 and len(result["sdr_per_class"]) >= 2
    assert result["sdri"] > 5


def test_best_permutation_assigns_outputs_to_references():
    refs = torch.randn(2, 2, 500)
    outputs = torch.stack([refs[:, 1], torch.randn(2, 500), refs[:, 0]], dim=1)
    chosen = best_permutation(outputs, refs)
    assert torch.equal(chosen, refs)
