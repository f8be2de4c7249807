"""Confidence intervals, paired method differences and claim verdicts (numpy/scipy only).

Scores are in dB; an interval is ``(mean, low, high)`` at ``level`` (two-sided). A claim
compares an interval with a threshold: it holds when the whole interval is on the claimed side,
fails when the whole interval is on the other side, and is inconclusive when it straddles the
threshold (more seeds or test mixtures are needed to decide).
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _scipy_stats

Interval = tuple[float, float, float]


def mean_ci(values, level: float = 0.95) -> Interval:
    """Mean of ``values (n,)`` and its Student-t interval, ``(mean, low, high)``.

    ``low, high = mean -+ t_{(1 + level) / 2, n - 1} s / sqrt(n)``, ``s`` the sample standard
    deviation (ddof 1). One value gives ``(-inf, inf)``: it says nothing about its spread.
    """
    x = _finite_1d(values, "values")
    mean = float(x.mean())
    if len(x) == 1:
        return mean, -np.inf, np.inf
    half = _t_quantile(level, len(x) - 1) * float(x.std(ddof=1)) / np.sqrt(len(x))
    return mean, mean - half, mean + half


def paired_difference(a, b, level: float = 0.95, resamples: int = 10000, seed: int = 0) -> Interval:
    """Mean and interval of ``a - b`` scored on the same test mixtures.

    ``a``, ``b``: ``(items,)`` for one training seed, or ``(seeds, items)``: per-item scores
    (e.g. ``score()["items"]["si_sdr"]``) in the same item order; the two methods may have
    different numbers of seeds. One seed: the paired Student-t interval of the per-item
    differences. Several seeds: a hierarchical bootstrap, chosen over averaging each item over
    seeds first because that average hides the training-seed spread (a same-seed retrain moved
    a cell by up to 0.9 dB SI-SDR): each resample draws seeds with replacement, for each method
    on its own (seed k of one method has nothing to do with seed k of the other), and items with
    replacement, the same items for both methods (the pairing); the interval is the percentile
    interval of the resampled mean differences (deterministic for a given ``seed``).
    """
    a2, b2 = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    if a2.ndim != 2 or b2.ndim != 2 or a2.shape[1] != b2.shape[1]:
        raise ValueError(f"a {a2.shape} and b {b2.shape} must score the same items")
    _finite_1d(a2.ravel(), "a"), _finite_1d(b2.ravel(), "b")
    if len(a2) == 1 and len(b2) == 1:
        return mean_ci(a2[0] - b2[0], level)
    mean = float(a2.mean() - b2.mean())
    rng = np.random.default_rng(seed)
    n_items = a2.shape[1]
    draws = []
    for start in range(0, resamples, 1000):  # chunks bound memory to ~1000 x items
        count = min(1000, resamples - start)
        items = rng.multinomial(n_items, np.full(n_items, 1 / n_items), count)  # (B, I)
        seeds_a = rng.multinomial(len(a2), np.full(len(a2), 1 / len(a2)), count)  # (B, Sa)
        seeds_b = rng.multinomial(len(b2), np.full(len(b2), 1 / len(b2)), count)
        diff = (seeds_a @ a2) / len(a2) - (seeds_b @ b2) / len(b2)  # (B, I) seed-mean difference
        draws.append((diff * items).sum(1) / n_items)
    low, high = np.quantile(np.concatenate(draws), [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)


def verdict(low: float, high: float, threshold: float, direction: str = ">=") -> str:
    """``"holds"``, ``"fails"`` or ``"inconclusive"``: the claim "quantity ``direction`` threshold".

    ``direction ">="``: holds when ``low >= threshold``, fails when ``high < threshold``;
    ``"<="``: holds when ``high <= threshold``, fails when ``low > threshold``; otherwise (the
    interval straddles the threshold, or a bound is NaN) inconclusive.
    """
    if direction == ">=":
        holds, fails = low >= threshold, high < threshold
    elif direction == "<=":
        holds, fails = high <= threshold, low > threshold
    else:
        raise ValueError(f"direction must be '>=' or '<=', not {direction!r}")
    return "holds" if holds else "fails" if fails else "inconclusive"


def _t_quantile(level: float, dof: int) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level}")
    return float(_scipy_stats.t.ppf((1 + level) / 2, dof))


def _finite_1d(values, name: str) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).ravel()
    if len(x) == 0:
        raise ValueError(f"{name}: no values")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: {int((~np.isfinite(x)).sum())} value(s) are not finite")
    return x
