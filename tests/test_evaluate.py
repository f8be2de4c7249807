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


def test_score_reports_every_sdr_on_the_same_estimates(pairs):
    from wsas.metrics import si_sdr, snr_sdr

    estimates = oracle_irm(pairs, *STFT)
    result, mixture = score(estimates, pairs), bounds(pairs, *STFT)["mixture"]
    refs, mix = pairs.sources[:, 0].double(), pairs.mixtures[:, 0, None].double()
    assert result["si_sdri"] == pytest.approx(result["si_sdr"] - mixture["si_sdr"], abs=1e-6)
    assert result["snr_sdri"] == pytest.approx(result["snr_sdr"] - mixture["snr_sdr"], abs=1e-6)
    assert result["snr_sdr"] == pytest.approx(float(snr_sdr(estimates.double(), refs).mean()))
    assert mixture["si_sdr"] == pytest.approx(float(si_sdr(mix.expand_as(refs), refs).mean()))
    assert mixture["si_sdri"] == mixture["snr_sdri"] == 0
    half = score(0.5 * estimates, pairs)  # a wrong level: only the SNR-style SDR pays for it
    assert half["sdr"] == pytest.approx(result["sdr"], abs=1e-4)
    assert half["si_sdri"] == pytest.approx(result["si_sdri"], abs=1e-4)
    assert half["snr_sdr"] < 6.03 < result["snr_sdr"] - 5


def test_drop_silent_leaves_out_mixtures_with_a_near_silent_estimate(pairs):
    from wsas.errors import WsasError

    estimates = oracle_irm(pairs, *STFT)
    estimates[1, 0] *= 1e-4  # -80 dB: near-silent
    kept = [0, 2, 3]
    captions = [pairs.captions[i] for i in kept]
    subset = pairs.__class__(pairs.sources[kept], pairs.labels[kept], captions)
    every, dropped = score(estimates, pairs), score(estimates, pairs, drop_silent=True)
    alone = score(estimates[kept], subset)
    assert every["pairs"] == 4 and every["silent_pairs"] == 1 and every["dropped_silent"] == 0
    assert dropped["pairs"] == 3 and dropped["silent_pairs"] == dropped["dropped_silent"] == 1
    for key in ("sdr", "si_sdr", "snr_sdr", "sdri", "si_sdri", "snr_sdri"):
        assert dropped[key] == pytest.approx(alone[key], abs=1e-6), key
    assert dropped["si_sdr"] > every["si_sdr"]
    assert len(dropped["items"]["si_sdr"]) == 4  # items list every mixture: paired comparisons
    with pytest.raises(WsasError, match="near-silent"):
        score(torch.zeros_like(estimates), pairs, drop_silent=True)


def test_evaluate_cli_reports_every_metric_by_name(smoke_separator, smoke_corpus, capsys):
    import json

    from wsas.cli import main

    run = ["evaluate", str(smoke_separator), "--data", str(smoke_corpus), "--preset", "smoke"]
    assert main([*run, "--pairs", "3", "--json", "--drop-silent"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("sdr", "sdri", "si_sdr", "si_sdri", "snr_sdr", "snr_sdri", "silent_pairs"):
        assert isinstance(report[key], (int, float)), key
    assert report["pairs"] + report["dropped_silent"] == 3
    assert main([*run, "--pairs", "3"]) == 0
    text = capsys.readouterr().out
    assert "BSS Eval v3" in text and "SI-SDRi" in text and "SNR-style SDR" in text
    assert main([*run, "--dcase", str(smoke_corpus)]) == 2
    assert "give one of --data, --dcase" in capsys.readouterr().err


def write_dcase_layout(folder, sr: int = 16000, seconds: float = 1.0) -> list[list[str]]:
    """The task 9 synthetic validation layout in small: tones (sources), noises and the CSV."""
    import soundfile as sf

    audio = folder / "lass_validation"
    audio.mkdir(parents=True)
    rng = np.random.default_rng(0)
    t = np.arange(round(sr * seconds)) / sr
    for name, freq in (("tone_a", 440.0), ("tone_b", 1200.0)):
        sf.write(audio / f"{name}.wav", 0.5 * np.sin(2 * np.pi * freq * t), sr)
    for name in ("noise_a", "noise_b"):
        sf.write(audio / f"{name}.wav", 0.3 * rng.standard_normal(len(t)), sr)
    rows = [
        ["tone_a", "noise_a", "0", "a tone at 440 hertz"],
        ["tone_b", "noise_b", "5", "a high beep"],
        ["tone_a", "noise_b", "-5", "a violin plays"],
    ]
    lines = ["source,noise,snr,query", *(",".join(r) for r in rows)]
    (folder / "lass_synthetic_validation.csv").write_text("\n".join(lines) + "\n")
    return rows


def test_dcase_mixture_is_the_evaluators_mixing_rule():
    from wsas.evaluate import dcase_mixture
    from wsas.metrics import snr_sdr

    t = torch.arange(8000) / 8000
    source = 0.5 * torch.sin(2 * torch.pi * 300 * t)
    noise = torch.randn(8000, generator=torch.Generator().manual_seed(0))
    for snr in (-5.0, 0.0, 10.0):
        reference, mixture = dcase_mixture(source, noise, snr)
        assert float(snr_sdr(mixture, reference)) == pytest.approx(snr, abs=1e-9)
    reference, mixture = dcase_mixture(source, 10 * noise, -5.0)  # peak > 1: both to 0.9
    assert float(mixture.abs().max()) == pytest.approx(0.9)
    assert float(reference.abs().max()) < 0.5 and float(reference.abs().max()) > 0


def test_dcase_cli_scores_a_generated_layout(smoke_separator, tmp_path, capsys):
    import json

    from wsas.cli import main

    rows = write_dcase_layout(tmp_path)
    assert main(["evaluate", str(smoke_separator), "--dcase", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["mixtures"] == 3 and len(report["per_file"]) == 3
    for row, scored in zip(rows, report["per_file"]):
        assert [scored["source"], scored["noise"], scored["caption"]] == [row[0], row[1], row[3]]
        # the unseparated mixture scores exactly its SNR: SDRi is the SDR minus the SNR
        assert scored["snr_sdri"] == pytest.approx(scored["snr_sdr"] - float(row[2]), abs=1e-3)
    means = {k: np.mean([f[k] for f in report["per_file"]]) for k in ("snr_sdr", "si_sdr")}
    assert report["snr_sdr"] == pytest.approx(means["snr_sdr"], abs=1e-3)
    assert report["si_sdr"] == pytest.approx(means["si_sdr"], abs=1e-3)
    assert main(["evaluate", str(smoke_separator), "--dcase", str(tmp_path)]) == 0
    assert "SNR-SDRi" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "lass_synthetic_validation.csv").unlink(), "missing"),
        (lambda f: (f / "lass_validation" / "noise_b.wav").unlink(), "noise_b.wav: no such file"),
        (lambda f: (f / "lass_validation" / "tone_a.wav").write_bytes(b"RIFFjunk"), "tone_a.wav"),
        (lambda f: _rewrite(f, "5", "loud"), "snr 'loud' is not a number"),
        (lambda f: _rewrite(f, "query", "text"), "no column 'query'"),
    ],
)
def test_dcase_layout_errors_are_one_line(smoke_separator, tmp_path, capsys, damage, message):
    from wsas.cli import main

    write_dcase_layout(tmp_path)
    damage(tmp_path)
    assert main(["evaluate", str(smoke_separator), "--dcase", str(tmp_path)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("wsas: error: ") and message in line


def _rewrite(folder, old: str, new: str) -> None:
    listing = folder / "lass_synthetic_validation.csv"
    listing.write_text(listing.read_text().replace(old, new, 1))
