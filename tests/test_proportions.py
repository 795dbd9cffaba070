"""The one Wilson interval (debates.proportions), shared by judging.stats and the pixel self-play
tables: its edge cases, and agreement with statsmodels (judging's test_stats checks the rest)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st
from statsmodels.stats.proportion import proportion_confint

from debates.pixel.selfplay import table2_rows
from debates.proportions import wilson_interval, z_for
from judging import stats


def test_no_successes_gives_a_lower_bound_of_exactly_zero_and_all_successes_an_upper_bound_of_one():
    for total in (1, 2, 7, 20, 1000, 10**9):
        low, high = wilson_interval(0, total)
        assert low == 0.0 and 0 < high < 1
        low, high = wilson_interval(total, total)
        assert high == 1.0 and 0 < low < 1
    assert wilson_interval(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)


@given(
    st.integers(1, 5000).flatmap(lambda total: st.tuples(st.integers(0, total), st.just(total))), st.floats(0.5, 0.999)
)
def test_the_interval_holds_the_estimate_and_mirrors_around_one_half(count, level):
    successes, total = count
    low, high = wilson_interval(successes, total, level)
    assert 0.0 <= low <= successes / total <= high <= 1.0
    mirror_low, mirror_high = wilson_interval(total - successes, total, level)
    assert (low, high) == pytest.approx((1 - mirror_high, 1 - mirror_low), abs=1e-12)


def test_half_successes_from_ties_are_accepted():
    low, high = wilson_interval(2.5, 5)
    assert low == pytest.approx(1 - high) and low < 0.5 < high


@pytest.mark.parametrize(
    "successes, total, level, problem",
    [
        (0, 0, 0.95, "at least one observation"),
        (1, 0, 0.95, "at least one observation"),
        (-1, 5, 0.95, "between 0 and total"),
        (6, 5, 0.95, "between 0 and total"),
        (2, 5, 1.0, "level must be between 0 and 1"),
        (2, 5, 0.0, "level must be between 0 and 1"),
    ],
)
def test_impossible_counts_and_levels_are_refused(successes, total, level, problem):
    with pytest.raises(ValueError, match=problem):
        wilson_interval(successes, total, level)


@pytest.mark.parametrize("successes, total", [(0, 1), (1, 1), (8, 10), (117, 200), (3, 1000)])
def test_statsmodels_the_judging_statistics_and_the_pixel_tables_give_the_same_interval(successes, total):
    expected = proportion_confint(successes, total, alpha=0.05, method="wilson")
    assert wilson_interval(successes, total) == pytest.approx(expected, abs=1e-12)
    interval = stats.wilson_interval(successes, total)
    assert (interval.low, interval.high) == wilson_interval(successes, total)
    outcomes = {(image, 6, "honest", True): image < successes for image in range(total)}
    [row] = [r for r in table2_rows(outcomes) if r["first"] == "honest"]
    assert (row["low"], row["high"]) == wilson_interval(successes, total)


def test_z_is_the_normal_quantile():
    assert z_for(0.95) == pytest.approx(1.959963984540054, abs=1e-12)
