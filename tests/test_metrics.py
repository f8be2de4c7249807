"""Each SDR on hand-made estimates: against a hand computation or mir_eval, and a case that would
fail if one metric were swapped for another."""

import numpy as np
import pytest
import torch

from wsas.metrics import bss_eval, improvement, near_silent, si_sdr, snr_sdr


def signals(seed: int = 0, n: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    """A reference ``(S,)`` and an independent interferer, float64, unit variance."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=g, dtype=torch.float64), torch.randn(
        n, generator=g, dtype=torch.float64
    )


def test_snr_sdr_is_audiosep_calculate_sdr_by_hand():
    s, n = signals()
    est = s + 0.3 * n
    by_hand = 10 * np.log10(np.mean(s.numpy() ** 2) / np.mean((est - s).numpy() ** 2))
    assert float(snr_sdr(est, s)) == pytest.approx(by_hand, abs=1e-9)
    assert float(snr_sdr(torch.zeros_like(s), s)) == pytest.approx(0, abs=1e-9)  # silence: 0 dB
    power = float(s.pow(2).mean())
    assert float(snr_sdr(s, s)) == pytest.approx(10 * np.log10(power / 1e-10), abs=1e-6)  # floor


def test_a_wrong_level_costs_snr_sdr_only():
    s, n = signals(1)
    est = s + 0.1 * n
    half = 0.5 * est
    assert float(si_sdr(half, s)) == pytest.approx(float(si_sdr(est, s)), abs=1e-6)
    sdr = bss_eval(torch.stack([half, est])[:, None], torch.stack([s, s])[:, None])["sdr"]
    assert sdr[0, 0] == pytest.approx(sdr[1, 0], abs=1e-6)  # BSS Eval forgives the gain too
    assert float(snr_sdr(est, s)) > 19 and float(snr_sdr(half, s)) < 6.03  # |s - s/2| = |s|/2


def test_a_filtered_estimate_costs_si_sdr_but_not_bss_eval_sdr():
    s, _ = signals(2)
    echo = s.clone()
    echo[3:] += 0.5 * s[:-3]  # a 4-tap filter: inside BSS Eval's 512-tap projection
    sdr = bss_eval(echo[None, None], s[None, None])["sdr"][0, 0]
    assert sdr > 35  # the only error: the filter's 3-sample tail, cut at the clip's end
    assert float(si_sdr(echo, s)) == pytest.approx(10 * np.log10(1 / 0.25), abs=0.2)


def test_si_sdr_by_hand_and_its_mean_removal():
    s, n = signals(3)
    est = 2.0 * s + 0.4 * n
    alpha = float(est @ s / (s @ s))
    target, error = alpha * s, est - alpha * s
    by_hand = 10 * np.log10(float(target @ target) / float(error @ error))
    assert float(si_sdr(est - est.mean(), s - s.mean(), eps=0)) == pytest.approx(
        float(si_sdr(est, s, eps=0)), abs=1e-9
    )
    assert float(si_sdr(est, s, eps=0, zero_mean=False)) == pytest.approx(by_hand, abs=1e-9)
    offset = est + 3.0  # a DC offset: removed by the usual SI-SDR, an error for the evaluator's
    assert float(si_sdr(offset, s)) == pytest.approx(float(si_sdr(est, s)), abs=1e-6)
    assert float(si_sdr(offset, s, zero_mean=False)) < float(si_sdr(est, s)) - 10


def test_improvements_subtract_the_mixtures_score_against_the_same_reference():
    s, n = signals(4)
    mix, est = s + n, s + 0.1 * n
    for metric in (si_sdr, snr_sdr):
        assert float(improvement(metric, est, mix, s)) == pytest.approx(
            float(metric(est, s) - metric(mix, s)), abs=1e-9
        )
    assert float(improvement(snr_sdr, est, mix, s)) == pytest.approx(20.0, abs=1e-6)  # 0.1 n


def test_si_sdr_agrees_with_mir_eval_on_no_filter_only_where_the_estimate_is_a_gain():
    import mir_eval.separation

    s, n = signals(5, 16000)
    est = 0.4 * s + 0.1 * n  # white noise: 512 taps of s explain ~512/16000 of it (0.14 dB)
    sdr = mir_eval.separation.bss_eval_sources(s[None].numpy(), est[None].numpy())[0][0]
    assert float(si_sdr(est, s)) == pytest.approx(sdr, abs=0.5)  # projections nearly agree
    assert float(snr_sdr(est, s)) < sdr - 7  # the SNR-style SDR pays for the 0.4 gain (4.3 dB)


def test_near_silent_is_relative_to_the_mixture():
    s, n = signals(6)
    mix = (s + n)[None]
    ests = torch.stack([1e-4 * s, 1e-2 * s, s])  # -80, -40 and -3 dB of the mixture's energy
    assert near_silent(ests, mix).tolist() == [True, False, False]
    assert near_silent(1e3 * ests, 1e3 * mix).tolist() == [True, False, False]
    assert near_silent(torch.zeros(1, 10), torch.zeros(1, 10)).tolist() == [True]
