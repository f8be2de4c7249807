import numpy as np
import pytest

from wsas.lab.premise import MIN_DROP_DB, MIN_GAP_DB, premise, premise_line

N = 200  # test mixtures


def cells(drop: float, gap: float, noise: float = 1.0, seed: int = 0):
    """Per-mixture SI-SDR of ms2, ms4, supervised: a shared per-mixture difficulty plus
    independent noise, ms2 - ms4 = ``drop`` and supervised - ms4 = ``gap`` in expectation."""
    rng = np.random.default_rng(seed)
    hard = rng.normal(4.0, 3.0, N)  # what every model finds hard
    ms4 = hard + rng.normal(0, noise, N)
    ms2 = hard + drop + rng.normal(0, noise, N)
    supervised = hard + gap + rng.normal(0, noise, N)
    return ms2, ms4, supervised


def test_the_premise_holds_with_a_large_drop_and_gap():
    check = premise(*cells(drop=1.6, gap=4.3))
    assert check["holds"] and check["claim_a"] == "testable"
    assert check["drop"]["mean"] == pytest.approx(1.6, abs=0.3)
    assert check["gap"]["mean"] == pytest.approx(4.3, abs=0.3)
    assert 0 < check["drop"]["low"] < check["drop"]["mean"] < check["drop"]["high"]
    assert (check["drop"]["min"], check["gap"]["min"]) == (MIN_DROP_DB, MIN_GAP_DB)
    assert premise_line(check).startswith("premise holds")


def test_the_drop_and_gap_are_the_paired_differences_themselves():
    ms2, ms4, sup = cells(drop=1.6, gap=4.3)
    check = premise(ms2, ms4, sup)
    assert check["drop"]["mean"] == pytest.approx(np.mean(ms2 - ms4), abs=1e-12)
    assert check["gap"]["mean"] == pytest.approx(np.mean(sup - ms4), abs=1e-12)


@pytest.mark.parametrize(
    "drop, gap, failing",
    [
        (0.8, 4.3, "drop"),  # mix-and-separate barely degrades (the music pilot's -0.84)
        (1.6, 1.5, "gap"),  # supervised wins too little at 4 sources
    ],
)
def test_the_premise_fails_on_each_threshold(drop, gap, failing):
    check = premise(*cells(drop, gap))
    assert not check["holds"] and check["claim_a"] == "not testable here"
    assert not check[failing]["ok"]
    other = {"drop": "gap", "gap": "drop"}[failing]
    assert check[other]["ok"]
    assert "claim (a) not testable here" in premise_line(check)


def test_a_mean_above_the_threshold_with_an_interval_touching_zero_fails():
    """Large enough on average but too noisy to exclude zero: not established."""
    ms2, ms4, sup = cells(drop=1.2, gap=4.3, noise=12.0, seed=3)
    check = premise(ms2[:12], ms4[:12], sup[:12])
    assert check["drop"]["mean"] >= MIN_DROP_DB and check["drop"]["low"] <= 0
    assert not check["drop"]["ok"] and not check["holds"]


def test_several_seeds_use_the_paired_bootstrap():
    runs = [cells(1.6, 4.3, seed=s) for s in range(3)]
    ms2, ms4, sup = (np.stack([r[i] for r in runs]) for i in range(3))
    check = premise(ms2, ms4, sup)
    assert check["holds"]
    assert premise(ms2, ms4, sup) == check  # seeded: the same intervals again


def test_unpaired_arrays_are_refused():
    ms2, ms4, sup = cells(1.6, 4.3)
    with pytest.raises(ValueError, match="same items"):
        premise(ms2, ms4[:-1], sup)
