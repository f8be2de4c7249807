import numpy as np
import pytest
import torch

from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.evaluate import bounds, bss_eval, oracle_irm, score
from wsas.losses import best_permutation
from wsas.presets import PRESETS

STFT = (PRESETS["smoke"].n_fft, PRESETS["smoke"].hop)


@pytest.fixture(scope="module")
def pairs(smoke_corpus):
    return fixed_pairs(load_embedded(smoke_corpus, "test"), 4)


def test_fast_and_mir_eval_agree_on_real_separations(pairs):
    estimates = oracle_irm(pairs, *STFT)
    refs = pairs.sources[:, 0]
    fast = bss_eval(estimates[:2], refs[:2], "fast")
    ref = bss_eval(estimates[:2], refs[:2], "mir_eval")
    for key in ("sdr", "sir", "sar"):
        assert np.abs(fast[key] - ref[key]).max() < 0.01, key


def test_oracle_mask_beats_the_mixture(pairs):
    b = bounds(pairs, *STFT)
    assert b["oracle_irm"]["sdr"] > b["mixture"]["sdr"] + 5
    assert b["mixture"]["sdri"] == pytest.approx(0, abs=1e-6)


def test_score_reports_per_class(pairs):
    result = score(oracle_irm(pairs, *STFT), pairs)
    assert result["pairs"] == 4 and len(result["sdr_per_class"]) >= 2
    assert result["sdri"] > 5


def test_best_permutation_assigns_outputs_to_references():
    refs = torch.randn(2, 2, 500)
    outputs = torch.stack([refs[:, 1], torch.randn(2, 500), refs[:, 0]], dim=1)
    chosen = best_permutation(outputs, refs)
    assert torch.equal(chosen, refs)


def test_clap_score_is_relative_to_the_mixture(pairs, smoke_clap):
    from wsas.clap import load_clap
    from wsas.evaluate import clap_score

    clap = load_clap("tiny", str(smoke_clap))
    texts = [["a violin plays", "a dog barks"]] * len(pairs.labels)
    result = clap_score(clap, pairs.sources[:, 0], pairs.mixtures[:, 0], texts, 8000)
    assert result["clapscore_improvement"] == pytest.approx(
        result["clap_score"] - result["clap_score_mixture"], abs=1e-6
    )
    assert -1 <= result["leakage"] <= 1


def test_reference_free_cli_on_a_folder(smoke_separator, smoke_corpus, tmp_path, capsys):
    import json

    import soundfile as sf

    from wsas.cli import main

    clips = load_embedded(smoke_corpus, "test")
    sf.write(tmp_path / "a.wav", (clips.waves[0] + clips.waves[-1]).numpy(), clips.sr)
    (tmp_path / "captions.csv").write_text(
        "file,caption\na.wav,An accordion plays while a person breathes\n"
    )
    assert (
        main(["evaluate", str(smoke_separator), "--reference-free", str(tmp_path), "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["files"] == 1 and report["per_file"][0]["clauses"] == [
        "an accordion plays",
        "a person breathes",
    ]
