import numpy as np
import pytest
import torch

from wsas.data.datasets import load_embedded
from wsas.data.mixing import fixed_pairs
from wsas.evaluate import (
    bounds,
    class_templates,
    oracle_irm,
    score,
    template_mask,
)
from wsas.losses import best_permutation
from wsas.metrics import _block_levinson, bss_eval
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


def realistic_estimates(refs: torch.Tensor, seed: int) -> torch.Tensor:
    """Each reference plus leakage of the other source and low-passed noise, ``(P, 2, S)``."""
    import scipy.signal

    rng = np.random.default_rng(seed)
    b, a = scipy.signal.butter(4, 0.2)
    noise = scipy.signal.lfilter(b, a, rng.normal(size=refs.shape))
    noise *= refs.std(-1, keepdim=True).numpy() / noise.std(-1, keepdims=True)
    leak = torch.from_numpy(rng.uniform(0.1, 0.5, (*refs.shape[:2], 1)))
    return refs.double() + leak * refs.flip(1).double() + 0.2 * torch.from_numpy(noise)


def test_fast_bss_eval_matches_mir_eval_on_leaky_noisy_estimates(smoke_corpus):
    pairs = fixed_pairs(load_embedded(smoke_corpus, "test"), 3, seed=7)
    refs = pairs.sources[:, 0]
    estimates = realistic_estimates(refs, seed=0)
    fast, ref = bss_eval(estimates, refs, "fast"), bss_eval(estimates, refs, "mir_eval")
    for key in ("sdr", "sir", "sar"):
        assert fast[key].shape == (3, 2)
        assert np.abs(fast[key] - ref[key]).max() < 0.01, key


def test_fast_bss_eval_matches_mir_eval_on_near_singular_references():
    import scipy.signal

    rng = np.random.default_rng(3)
    b, a = scipy.signal.cheby2(10, 120, 0.1)  # 120 dB stop band: the Gram matrix is near-singular
    refs = torch.from_numpy(scipy.signal.lfilter(b, a, rng.normal(size=(1, 2, 4000))))
    refs = refs / refs.std(-1, keepdim=True)
    estimates = realistic_estimates(refs, seed=1)
    fast, ref = bss_eval(estimates, refs, "fast"), bss_eval(estimates, refs, "mir_eval")
    for key in ("sdr", "sir", "sar"):
        assert np.abs(fast[key] - ref[key]).max() < 0.01, key


def test_block_levinson_solves_a_block_toeplitz_system():
    rng = np.random.default_rng(0)
    n, size = 2, 6
    signals = rng.normal(size=(n, 40))
    lags = np.stack(  # gamma(k)[i, j] = sum_t x_i(t + k) x_j(t), k = -5..5
        [
            [
                [np.dot(np.roll(np.pad(xi, 10), -k), np.pad(xj, 10)) for xj in signals]
                for xi in signals
            ]
            for k in range(-size + 1, size)
        ]
    )
    gram = np.block([[lags[b - a + size - 1] for b in range(size)] for a in range(size)])
    rhs = rng.normal(size=(size, n, 3))
    x, ok = _block_levinson(lags[None], rhs[None])
    assert ok.all()
    np.testing.assert_allclose(
        gram @ x[0].reshape(size * n, 3), rhs.reshape(size * n, 3), atol=1e-9
    )


def test_unknown_bss_eval_backend_is_a_user_error(pairs):
    from wsas.errors import WsasError

    with pytest.raises(WsasError, match="back-end"):
        bss_eval(pairs.sources[:1, 0], pairs.sources[:1, 0], "museval")


def test_oracle_mask_beats_the_mixture(pairs):
    b = bounds(pairs, *STFT)
    assert b["oracle_irm"]["sdr"] > b["mixture"]["sdr"] + 5
    assert b["mixture"]["sdri"] == pytest.approx(0, abs=1e-6)


def test_score_reports_per_class(pairs):
    result = score(oracle_irm(pairs, *STFT), pairs)
    assert result["pairs"] == 4 and len(result["sdr_per_class"]) >= 2
    assert result["si_sdr_per_class"].keys() == result["sdr_per_class"].keys()
    assert result["sdri"] > 5


def test_score_reports_the_level_error_that_the_other_metrics_forgive(pairs):
    assert score(pairs.sources[:, 0].clone(), pairs)["level_db"] == pytest.approx(0, abs=1e-9)
    estimates = oracle_irm(pairs, *STFT)
    right, quiet = score(estimates, pairs), score(0.5 * estimates, pairs)  # half: -6.02 dB
    assert quiet["level_db"] == pytest.approx(right["level_db"] - 6.02, abs=0.01)
    assert quiet["si_sdr"] == pytest.approx(right["si_sdr"], abs=1e-6)


def test_score_lists_items_in_pair_order(pairs):
    estimates = oracle_irm(pairs, *STFT)
    whole, first = (
        score(estimates, pairs),
        score(
            estimates[:1], pairs.__class__(pairs.sources[:1], pairs.labels[:1], pairs.captions[:1])
        ),
    )
    assert len(whole["items"]["sdr"]) == len(whole["items"]["si_sdr"]) == 4
    assert whole["items"]["si_sdr"][0] == pytest.approx(first["si_sdr"], abs=1e-3)
    assert np.mean(whole["items"]["sdr"]) == pytest.approx(whole["sdr"], abs=1e-3)


def test_class_templates_are_mean_magnitude_spectra():
    from wsas.data.datasets import ClipSet

    t = torch.arange(4000) / 8000
    tones = torch.stack([torch.sin(2 * torch.pi * f * t) for f in (500.0, 500.0, 2000.0)])
    clips = ClipSet(tones, torch.tensor([0, 0, 2]), [("a",)] * 3, ("x", "y", "z"), 8000)
    templates = class_templates(clips, 256, 64)
    assert templates.shape == (3, 129)
    assert int(templates[0].argmax()) == 16 and int(templates[2].argmax()) == 64  # 31.25 Hz bins
    assert not templates[1].any()


def test_template_mask_splits_the_mixture_by_a_static_mask(pairs):
    templates = torch.rand(24, 256, generator=torch.Generator().manual_seed(0)) + 0.1
    estimates = template_mask(pairs, templates, *STFT)
    assert estimates.shape == pairs.sources[:, 0].shape
    torch.testing.assert_close(estimates.sum(1), pairs.mixtures[:, 0], atol=1e-4, rtol=0)


def test_bounds_report_the_class_template_between_mixture_and_oracle(pairs, smoke_corpus):
    templates = class_templates(load_embedded(smoke_corpus, "train"), *STFT)
    b = bounds(pairs, *STFT, templates=templates)
    assert list(b) == ["mixture", "class_template", "oracle_irm"]
    assert b["mixture"]["si_sdr"] < b["class_template"]["si_sdr"] < b["oracle_irm"]["si_sdr"]


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
