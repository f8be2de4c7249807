"""The paper's premise as a computed check: does mix-and-separate degrade where the method helps?

The paper's claim (a) (weak beats mix-and-separate on 4-source training mixtures) only says
something about the method where mix-and-separate loses ground as its training mixtures hold
more sources and supervision would win that ground back. Two paired differences on the same
2-source test mixtures decide it, in dB SI-SDR:

* the drop: mix-and-separate trained on 2-source mixtures minus trained on 4-source mixtures;
* the gap: supervised minus mix-and-separate trained on 4-source mixtures.

The premise holds when the drop is at least :data:`MIN_DROP_DB` and the gap at least
:data:`MIN_GAP_DB` (the paper, MUSIC: 1.6 and 4.3 dB SDR) and both intervals exclude zero;
otherwise claim (a) is "not testable here" rather than a plain "fails".
"""

from __future__ import annotations

from wsas.lab.stats import paired_difference

MIN_DROP_DB = 1.0  # mix-and-separate's loss from 2- to 4-source training mixtures, dB SI-SDR
MIN_GAP_DB = 2.0  # supervised over mix-and-separate at 4 sources, dB SI-SDR


def premise(ms2, ms4, supervised, level: float = 0.95, seed: int = 0) -> dict:
    """The premise check from per-test-mixture SI-SDR (dB) of three grid positions.

    ``ms2``, ``ms4``, ``supervised``: ``(items,)`` for one training seed or ``(seeds, items)``,
    the same test mixtures in the same order (e.g. ``evaluate_run(...)["items"]["si_sdr"]``):
    mix-and-separate trained on 2- and on 4-source mixtures, and supervised. Intervals are
    :func:`wsas.lab.stats.paired_difference`'s (one seed each: the paired Student-t interval;
    several: the hierarchical paired bootstrap, seeded by ``seed``).

    Returns ``{"drop": {...}, "gap": {...}, "holds": bool, "claim_a": str}``, each difference as
    ``{"mean", "low", "high", "min", "ok"}`` (dB; ``ok``: at least ``min`` and its interval
    excludes zero); ``claim_a`` is ``"testable"`` or ``"not testable here"``.
    """
    drop = _difference(ms2, ms4, MIN_DROP_DB, level, seed)
    gap = _difference(supervised, ms4, MIN_GAP_DB, level, seed)
    holds = drop["ok"] and gap["ok"]
    return {
        "drop": drop,
        "gap": gap,
        "holds": holds,
        "claim_a": "testable" if holds else "not testable here",
    }


def premise_line(check: dict) -> str:
    """One line of text for a :func:`premise` result."""

    def part(name: str, d: dict) -> str:
        interval = f"[{d['low']:+.2f}, {d['high']:+.2f}]"
        return f"{name} {d['mean']:+.2f} dB {interval} (needs >= {d['min']:g})"

    verdict = "holds" if check["holds"] else "fails"
    return (
        f"premise {verdict}: mix-and-separate's 2->4-source {part('drop', check['drop'])}, "
        f"supervised {part('gap', check['gap'])}; claim (a) {check['claim_a']}"
    )


def _difference(a, b, minimum: float, level: float, seed: int) -> dict:
    """``a - b`` paired, with whether it reaches ``minimum`` with an interval above zero."""
    mean, low, high = paired_difference(a, b, level=level, seed=seed)
    return {
        "mean": mean,
        "low": low,
        "high": high,
        "min": minimum,
        "ok": bool(mean >= minimum and low > 0),
    }
