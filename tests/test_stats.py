import numpy as np
import pytest
from scipy import stats as scipy_stats

from wsas.lab.stats import mean_ci, paired_difference, verdict


def test_mean_ci_of_known_values_uses_the_student_t_quantile():
    mean, low, high = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    half = 2.776445 * np.sqrt(2.5) / np.sqrt(5)  # t_{0.975, 4} from a printed t table
    assert mean == 3.0
    assert (low, high) == pytest.approx((3 - half, 3 + half), abs=1e-5)


@pytest.mark.parametrize("n, level", [(2, 0.95), (3, 0.9), (10, 0.95), (30, 0.99)])
def test_mean_ci_half_width_is_scipy_t_quantile_times_the_standard_error(n, level):
    values = np.random.default_rng(n).normal(1.0, 2.0, n)
    mean, low, high = mean_ci(values, level)
    expected = scipy_stats.t.ppf((1 + level) / 2, n - 1) * scipy_stats.sem(values)
    assert (high - low) / 2 == pytest.approx(expected, rel=1e-12)
    assert mean == pytest.approx(values.mean()) == pytest.approx((low + high) / 2)


def test_mean_ci_covers_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    hits = [
        low <= 0 <= high for _, low, high in (mean_ci(rng.normal(0, 1, 8)) for _ in range(2000))
    ]
    assert np.mean(hits) == pytest.approx(0.95, abs=0.015)


def test_one_value_gives_an_infinite_interval_and_no_verdict():
    mean, low, high = mean_ci([4.2])
    assert mean == 4.2 and (low, high) == (-np.inf, np.inf)
    assert verdict(low, high, 0.0) == "inconclusive"


def test_constant_values_give_a_zero_width_interval():
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)


def test_bad_inputs_are_refused_with_a_message():
    with pytest.raises(ValueError, match="no values"):
        mean_ci([])
    with pytest.raises(ValueError, match="not finite"):
        mean_ci([1.0, np.inf])
    with pytest.raises(ValueError, match="same items"):
        paired_difference([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="direction"):
        verdict(0, 1, 0, ">")


def test_pairing_removes_the_spread_between_test_mixtures():
    rng = np.random.default_rng(1)
    difficulty = rng.normal(0, 5, 200)  # some mixtures are much harder than others, for both
    b = difficulty + rng.normal(0, 0.1, 200)
    a = b + 0.3 + rng.normal(0, 0.1, 200)
    mean, low, high = paired_difference(a, b)
    assert mean == pytest.approx(0.3, abs=0.03)
    assert 0.2 < low < 0.3 < high < 0.4
    _, unpaired_low, unpaired_high = mean_ci(a)
    assert high - low < (unpaired_high - unpaired_low) / 10


def test_one_seed_paired_difference_is_the_t_interval_of_item_differences():
    rng = np.random.default_rng(2)
    a, b = rng.normal(1, 1, 20), rng.normal(0, 1, 20)
    assert paired_difference(a, b) == mean_ci(a - b)
    assert paired_difference(a[None], b[None]) == mean_ci(a - b)


def test_seed_spread_widens_the_interval_and_seed_order_does_not_matter():
    rng = np.random.default_rng(3)
    items = rng.normal(0, 3, 100)
    noise = rng.normal(0, 0.2, (3, 100))
    b = items + noise
    steady = items + 0.5 + noise[::-1]
    seedy = steady + np.array([[-1.0], [0.0], [1.0]])  # same mean, training seeds disagree
    _, low_steady, high_steady = paired_difference(steady, b)
    mean, low, high = paired_difference(seedy, b)
    assert mean == pytest.approx(0.5 + (noise[::-1] - noise).mean(), abs=1e-12)
    assert high - low > 3 * (high_steady - low_steady)
    assert paired_difference(seedy[::-1], b[[2, 0, 1]]) == pytest.approx(
        (mean, low, high), abs=0.05
    )


def test_hierarchical_bootstrap_is_deterministic_for_a_seed():
    rng = np.random.default_rng(4)
    a, b = rng.normal(1, 1, (3, 30)), rng.normal(0, 1, (2, 30))
    assert paired_difference(a, b, seed=5) == paired_difference(a, b, seed=5)


@pytest.mark.parametrize(
    "low, high, threshold, direction, expected",
    [
        (0.5, 1.5, 0.0, ">=", "holds"),
        (0.0, 1.5, 0.0, ">=", "holds"),
        (-1.5, -0.5, 0.0, ">=", "fails"),
        (-0.5, 0.5, 0.0, ">=", "inconclusive"),
        (-0.5, 0.5, 1.0, "<=", "holds"),
        (1.5, 2.5, 1.0, "<=", "fails"),
        (0.5, 2.5, 1.0, "<=", "inconclusive"),
        (np.nan, np.nan, 0.0, ">=", "inconclusive"),
    ],
)
def test_verdict_holds_fails_or_is_inconclusive(low, high, threshold, direction, expected):
    assert verdict(low, high, threshold, direction) == expected
