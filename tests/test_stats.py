"""judging.stats against reference implementations (statsmodels, scipy) and textbook values.

Pure tests: no database. statsmodels is a test-only dependency.
"""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from scipy import optimize, stats as scipy_stats
from statsmodels.stats.inter_rater import fleiss_kappa as statsmodels_fleiss_kappa
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint, proportions_ztest

from judging import scoring, stats

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
levels = st.sampled_from([0.8, 0.9, 0.95, 0.99])


@st.composite
def counts(draw, max_total=2000):
    total = draw(st.integers(1, max_total))
    return draw(st.integers(0, total)), total


@st.composite
def judgments_by_question(draw, max_questions=30, max_per_question=5):
    """(correct, question_ids) with several judgments per question."""
    questions = draw(st.integers(1, max_questions))
    correct, ids = [], []
    for q in range(questions):
        for _ in range(draw(st.integers(1, max_per_question))):
            correct.append(draw(st.booleans()))
            ids.append(f"q{q}")
    return correct, ids


def booleans(successes, total):
    return [True] * successes + [False] * (total - successes)


# --- accuracy ---------------------------------------------------------------------------------


@SETTINGS
@given(counts(), levels)
def test_wilson_interval_matches_statsmodels(count, level):
    successes, total = count
    expected_low, expected_high = proportion_confint(successes, total, alpha=1 - level, method="wilson")
    interval = stats.wilson_interval(successes, total, level)
    assert interval.low == pytest.approx(expected_low, abs=1e-12)
    assert interval.high == pytest.approx(expected_high, abs=1e-12)


@pytest.mark.parametrize("successes, total, level", [(1, 0, 0.95), (-1, 5, 0.95), (6, 5, 0.95), (2, 5, 1.0)])
def test_wilson_interval_rejects_impossible_counts(successes, total, level):
    with pytest.raises(ValueError):
        stats.wilson_interval(successes, total, level)


@SETTINGS
@given(judgments_by_question(), st.integers(0, 2**32 - 1))
def test_bootstrap_by_question_covers_the_estimate_and_repeats_with_its_seed(data, seed):
    correct, ids = data
    first = stats.accuracy(correct, ids, n_boot=300, seed=seed)
    again = stats.accuracy(correct, ids, n_boot=300, seed=seed)
    assert first == again
    assert first.bootstrap.low - 1e-12 <= first.estimate <= first.bootstrap.high + 1e-12
    assert first.wilson.low <= first.estimate <= first.wilson.high


@SETTINGS
@given(judgments_by_question(max_per_question=1), st.integers(2, 6), st.integers(0, 1000))
def test_copies_of_a_judgment_add_nothing_to_the_bootstrap_by_question(data, copies, seed):
    # Judging each question k times with the same outcome is no new evidence: the by-question
    # interval must not move, while the Wilson interval (which assumes independence) narrows.
    correct, ids = data
    single = stats.accuracy(correct, ids, n_boot=200, seed=seed)
    repeated = stats.accuracy(np.repeat(correct, copies), np.repeat(ids, copies), n_boot=200, seed=seed)
    assert repeated.bootstrap.low == pytest.approx(single.bootstrap.low)
    assert repeated.bootstrap.high == pytest.approx(single.bootstrap.high)
    assert repeated.wilson.high - repeated.wilson.low < single.wilson.high - single.wilson.low


def test_bootstrap_with_one_judgment_per_question_is_close_to_wilson_on_much_data():
    rng = np.random.default_rng(3)
    correct = rng.random(4000) < 0.7
    result = stats.accuracy(correct, np.arange(4000), n_boot=2000, seed=1)
    assert result.bootstrap.low == pytest.approx(result.wilson.low, abs=0.005)
    assert result.bootstrap.high == pytest.approx(result.wilson.high, abs=0.005)


def test_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="no judgments"):
        stats.accuracy([])
    with pytest.raises(ValueError, match="True/False"):
        stats.accuracy([1, 2, 0])
    with pytest.raises(ValueError, match="differ in length"):
        stats.accuracy([True, False], ["q1"])


def test_grouped_accuracy_splits_by_group_in_first_seen_order():
    groups = ["debate", "consultancy", "debate", "debate", "consultancy"]
    correct = [True, False, True, False, True]
    result = stats.grouped_accuracy(groups, correct, ["a", "a", "b", "c", "b"], n_boot=100)
    assert list(result) == ["debate", "consultancy"]
    assert (result["debate"].successes, result["debate"].total) == (2, 3)
    assert (result["consultancy"].successes, result["consultancy"].total) == (1, 2)
    assert result["debate"].bootstrap is not None


# --- two protocols ---------------------------------------------------------------------------


@SETTINGS
@given(counts(500), counts(500), levels)
def test_difference_matches_statsmodels_and_scipy(a, b, level):
    (x1, n1), (x2, n2) = a, b
    result = stats.compare_accuracies(booleans(x1, n1), booleans(x2, n2), level=level)
    assert result.estimate == pytest.approx(x1 / n1 - x2 / n2)
    low, high = confint_proportions_2indep(x1, n1, x2, n2, method="newcomb", compare="diff", alpha=1 - level)
    assert result.newcombe.low == pytest.approx(low, abs=1e-12)
    assert result.newcombe.high == pytest.approx(high, abs=1e-12)
    pooled = (x1 + x2) / (n1 + n2)
    if min(n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled)) < 5:
        assert result.test == "Fisher exact test"
        expected = scipy_stats.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]]).pvalue
    else:
        assert result.test == "two-proportion z-test"
        expected = proportions_ztest([x1, x2], [n1, n2])[1]
    assert result.p_value == pytest.approx(expected, rel=1e-9, abs=1e-15)


@SETTINGS
@given(judgments_by_question(), judgments_by_question(), st.integers(0, 1000))
def test_difference_bootstrap_covers_the_estimate_and_repeats(a, b, seed):
    result = stats.compare_accuracies(a[0], b[0], a[1], b[1], n_boot=300, seed=seed)
    assert result.bootstrap.low - 1e-12 <= result.estimate <= result.bootstrap.high + 1e-12
    assert result == stats.compare_accuracies(a[0], b[0], a[1], b[1], n_boot=300, seed=seed)


def test_paired_bootstrap_is_narrower_when_protocols_agree_within_questions():
    # Each question is hard or easy for both protocols alike: pairing removes that variation,
    # so the by-question interval is narrower than Newcombe's, which assumes independence.
    rng = np.random.default_rng(5)
    easy = rng.random(400) < 0.75
    a = easy | (rng.random(400) < 0.1)
    b = easy & (rng.random(400) < 0.95)
    ids = np.arange(400)
    result = stats.compare_accuracies(a, b, ids, ids, n_boot=2000, seed=2)
    assert result.bootstrap.high - result.bootstrap.low < 0.6 * (result.newcombe.high - result.newcombe.low)


def test_difference_needs_question_ids_for_both_or_neither():
    with pytest.raises(ValueError, match="both"):
        stats.compare_accuracies([True], [False], ["q1"], None)


# --- calibration -----------------------------------------------------------------------------


def test_brier_and_log_score_on_a_worked_case():
    p = [0.9, 0.6, 0.2]
    assert stats.brier_score(p) == pytest.approx((0.1**2 + 0.4**2 + 0.8**2) / 3)
    assert stats.log_score(p) == pytest.approx((math.log2(0.9) + math.log2(0.6) + math.log2(0.2)) / 3)


@SETTINGS
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=200))
def test_brier_equals_the_binary_brier_score_of_answer_a(reports):
    # Judges report p(answer A); the outcome is whether A was correct.
    p_a = np.array([r[0] for r in reports])
    a_correct = np.array([r[1] for r in reports])
    p_correct = np.where(a_correct, p_a, 1 - p_a)
    assert stats.brier_score(p_correct) == pytest.approx(np.mean((p_a - a_correct) ** 2), abs=1e-12)


@SETTINGS
@given(st.lists(st.floats(0, 1), min_size=1, max_size=200))
def test_log_score_is_the_mean_of_the_platforms_log_rule(p):
    expected = np.mean([scoring.score("log", [q, 1 - q], 0) for q in p])
    assert stats.log_score(p) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def test_expected_calibration_error_on_a_worked_case():
    # confidences 0.95, 0.95 (right), 0.55 (right), 0.75 (wrong); bins of width 0.1 from 0.5
    p = [0.95, 0.95, 0.55, 0.25]
    expected = 2 / 4 * 0.05 + 1 / 4 * 0.45 + 1 / 4 * 0.75
    assert stats.expected_calibration_error(p, bins=5) == pytest.approx(expected)
    diagram = stats.reliability_diagram(p, bins=5)
    assert [b.count for b in diagram] == [1, 0, 1, 0, 2]
    assert diagram[2].mean_confidence == pytest.approx(0.75) and diagram[2].accuracy == 0.0
    assert diagram[1].mean_confidence is None


@SETTINGS
@given(st.lists(st.floats(0, 1), min_size=1, max_size=300), st.integers(1, 20))
def test_reliability_diagram_accounts_for_every_judgment(p, bins):
    diagram = stats.reliability_diagram(p, bins)
    assert sum(b.count for b in diagram) == len(p)
    for b in diagram:
        if b.count:
            assert b.low - 1e-12 <= b.mean_confidence <= b.high + 1e-12
            assert 0 <= b.accuracy <= 1
    result = stats.calibration(p, bins)
    assert result.expected_calibration_error == pytest.approx(stats.expected_calibration_error(p, bins))
    assert 0 <= result.expected_calibration_error <= 1


@SETTINGS
@given(st.lists(st.floats(0, 1), min_size=1, max_size=300))
def test_one_bin_ece_is_the_gap_between_mean_confidence_and_accuracy(p):
    p = np.array(p)
    confidence = np.maximum(p, 1 - p)
    correct = np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5))
    assert stats.expected_calibration_error(p, bins=1) == pytest.approx(abs(correct.mean() - confidence.mean()))


def test_calibrated_judges_have_small_ece():
    rng = np.random.default_rng(11)
    confidence = rng.uniform(0.5, 1, 20000)
    right = rng.random(20000) < confidence
    p_correct = np.where(right, confidence, 1 - confidence)
    assert stats.expected_calibration_error(p_correct) < 0.02
    overconfident = np.where(rng.random(20000) < 0.6, 0.99, 0.01)
    assert stats.expected_calibration_error(overconfident) > 0.3


def test_accuracy_at_high_confidence_counts_only_confident_judgments():
    result = stats.accuracy_at_confidence([0.95, 0.05, 0.9, 0.7, 0.5], threshold=0.9)
    assert result.share == pytest.approx(3 / 5)
    assert (result.accuracy.successes, result.accuracy.total) == (2, 3)
    assert stats.accuracy_at_confidence([0.6], threshold=0.9).accuracy is None
    with pytest.raises(ValueError, match="threshold"):
        stats.accuracy_at_confidence([0.6], threshold=0.5)


@pytest.mark.parametrize("bad", [[], [0.2, 1.5], [float("nan")], [[0.2, 0.3]], ["high"]])
def test_calibration_rejects_bad_probabilities(bad):
    with pytest.raises(ValueError):
        stats.calibration(bad)


# --- turn by turn ----------------------------------------------------------------------------


def test_probability_by_round_averages_the_debates_still_running():
    sequences = [[0.5, 0.6, 0.9], [0.5, 0.3], [0.6, 0.7, 0.8], [0.4]]
    rounds = stats.probability_by_round(sequences)
    assert [r.count for r in rounds] == [4, 3, 2]
    assert rounds[1].mean == pytest.approx((0.6 + 0.3 + 0.7) / 3)
    values = [0.5, 0.5, 0.6, 0.4]
    low, high = scipy_stats.t.interval(0.95, 3, loc=np.mean(values), scale=scipy_stats.sem(values))
    assert (rounds[0].interval.low, rounds[0].interval.high) == pytest.approx((low, high))
    assert rounds[2].interval.high <= 1.0  # clipped to the range of a probability


def test_probability_by_round_with_one_debate_has_no_interval():
    assert stats.probability_by_round([[0.5, 0.7]])[1].interval is None
    with pytest.raises(ValueError, match="sequence 1"):
        stats.probability_by_round([[0.5], [1.2]])


# --- debaters and judges ---------------------------------------------------------------------


def test_win_rates_separate_honest_and_dishonest_debates():
    records = stats.win_rates(
        debaters=["ann", "bob", "ann", "bob", "ann"],
        honest=[True, False, False, True, True],
        won=[True, False, True, False, False],
    )
    ann, bob = records
    assert ann.debater == "ann"
    assert (ann.honest.successes, ann.honest.total) == (1, 2)
    assert (ann.dishonest.successes, ann.dishonest.total) == (1, 1)
    assert (bob.honest.successes, bob.dishonest.successes) == (0, 0)
    only_honest = stats.win_rates(["cy"], [True], [True])[0]
    assert only_honest.dishonest is None


def test_judge_leaderboard_ranks_by_mean_score():
    rows = stats.judge_leaderboard(
        judges=["j1", "j2", "j1", "j2", "j3"],
        correct=[True, True, False, True, False],
        scores=[-0.1, -0.2, -2.0, -0.3, -3.0],
    )
    assert [r.judge for r in rows] == ["j2", "j1", "j3"]
    assert rows[0].mean_score == pytest.approx(-0.25)
    assert rows[1].accuracy.estimate == 0.5
    assert rows[2].score_interval is None
    with pytest.raises(ValueError, match="finite"):
        stats.judge_leaderboard(["j1"], [True], [float("-inf")])


# --- Bradley-Terry ---------------------------------------------------------------------------


def reference_bradley_terry(winners, losers, ties, prior):
    """The same penalised likelihood written game by game (a tie as half a win each way) and
    handed to scipy's L-BFGS."""
    players = sorted(set(winners) | set(losers))
    index = {p: i for i, p in enumerate(players)}
    a, b, weight = [], [], []
    for winner, loser, tie in zip(winners, losers, ties):
        for first, second, share in ((winner, loser, 0.5), (loser, winner, 0.5)) if tie else ((winner, loser, 1.0),):
            a.append(index[first])
            b.append(index[second])
            weight.append(share)
    a, b, weight = np.array(a), np.array(b), np.array(weight)

    def objective(theta):
        d = theta[a] - theta[b]
        value = (weight * np.logaddexp(0, -d)).sum() + 0.5 * prior * theta @ theta
        pull = weight / (1 + np.exp(d))  # weight * (1 - P(a beats b))
        gradient = prior * theta - np.bincount(a, pull, len(players)) + np.bincount(b, pull, len(players))
        return value, gradient

    fit = optimize.minimize(
        objective,
        np.zeros(len(players)),
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 1e-15, "maxiter": 20000},
    )
    theta = fit.x - fit.x.mean()
    return {p: theta[index[p]] for p in players}


@st.composite
def tournaments(draw):
    players = draw(st.integers(2, 7))
    games = draw(
        st.lists(
            st.tuples(st.integers(0, players - 1), st.integers(1, players - 1), st.booleans(), st.integers(0, 4)),
            min_size=1,
            max_size=60,
        )
    )
    winners = [f"p{a}" for a, _, _, _ in games]
    losers = [f"p{(a + shift) % players}" for a, shift, _, _ in games]
    ties = [tie and k == 0 for _, _, tie, k in games]  # about one game in ten is a tie
    return winners, losers, ties


@pytest.mark.slow
@SETTINGS
@given(tournaments(), st.sampled_from([0.01, 0.1, 1.0]))
def test_bradley_terry_matches_a_scipy_fit_of_the_same_likelihood(tournament, prior):
    winners, losers, ties = tournament
    result = stats.bradley_terry(winners, losers, ties, prior=prior, n_boot=0)
    expected = reference_bradley_terry(winners, losers, ties, prior)
    centred = result.ratings - result.ratings.mean()
    for player, rating in zip(result.players, centred):
        assert rating == pytest.approx(expected[player], abs=1e-4)


def synthetic_debates(debates, players, seed):
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, players)
    first = rng.integers(0, players, debates)
    second = (first + rng.integers(1, players, debates)) % players
    first_wins = rng.random(debates) < 1 / (1 + np.exp(strength[second] - strength[first]))
    winners = np.where(first_wins, first, second)
    losers = np.where(first_wins, second, first)
    return [f"d{i}" for i in winners], [f"d{i}" for i in losers], strength


def test_bradley_terry_bootstrap_covers_the_ratings_and_repeats_with_its_seed():
    winners, losers, strength = synthetic_debates(1500, 12, seed=4)
    result = stats.bradley_terry(winners, losers, n_boot=400, seed=9)
    assert np.all(result.low <= result.ratings) and np.all(result.ratings <= result.high)
    again = stats.bradley_terry(winners, losers, n_boot=400, seed=9)
    assert np.array_equal(result.low, again.low) and np.array_equal(result.high, again.high)
    true = np.array([strength[int(p[1:])] for p in result.players])
    assert np.corrcoef(result.ratings, true)[0, 1] > 0.95
    # most true strengths (centred) fall inside their 95% intervals
    true = true - true.mean()
    assert np.mean((result.low <= true) & (true <= result.high)) >= 0.75


def test_bradley_terry_with_many_players_matches_the_scipy_fit():
    # Past 64 players the Newton steps are solved through a Cholesky factorisation instead.
    winners, losers, _ = synthetic_debates(500, 70, seed=8)
    result = stats.bradley_terry(winners, losers, n_boot=0)
    expected = reference_bradley_terry(winners, losers, [False] * len(winners), 0.01)
    for player, rating in zip(result.players, result.ratings - result.ratings.mean()):
        assert rating == pytest.approx(expected[player], abs=1e-4)


def test_bradley_terry_rows_form_a_leaderboard():
    result = stats.bradley_terry(["a", "a", "b", "a", "c"], ["b", "c", "c", "b", "b"], n_boot=50)
    rows = result.rows()
    assert [r["player"] for r in rows] == ["a", "c", "b"]
    assert rows[0]["games"] == 3 and rows[0]["wins"] == 3
    assert rows[0]["elo"] > 1000 > rows[-1]["elo"]
    assert rows[0]["low"] <= rows[0]["rating"] <= rows[0]["high"]
    assert result.rating_of("a") == rows[0]["rating"]


def test_a_tie_counts_half_a_win_for_each():
    result = stats.bradley_terry(["a", "b"], ["b", "a"], ties=[True, False], n_boot=0)
    assert list(result.wins) == [0.5, 1.5]


def test_bradley_terry_rejects_bad_input():
    with pytest.raises(ValueError, match="themselves"):
        stats.bradley_terry(["a", "b"], ["b", "b"])
    with pytest.raises(ValueError, match="no debates"):
        stats.bradley_terry([], [])
    with pytest.raises(ValueError, match="prior"):
        stats.bradley_terry(["a"], ["b"], prior=0)


# --- agreement -------------------------------------------------------------------------------

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability": four observers, twelve units,
# values 1-5, missing ratings; nominal alpha = 0.743. Columns are observers A, B, C, D.
KRIPPENDORFF_UNITS = [
    (1, 1, None, 1),
    (2, 2, 3, 2),
    (3, 3, 3, 3),
    (3, 3, 3, 3),
    (2, 2, 2, 2),
    (1, 2, 3, 4),
    (4, 4, 4, 4),
    (1, 1, 2, 1),
    (2, 2, 2, 2),
    (None, 5, 5, 5),
    (None, None, 1, 1),
    (None, 3, None, None),
]


def test_krippendorff_alpha_reproduces_krippendorffs_worked_examples():
    assert stats.krippendorff_alpha(KRIPPENDORFF_UNITS) == pytest.approx(0.743, abs=5e-4)
    observer_a = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    observer_b = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert stats.krippendorff_alpha(list(zip(observer_a, observer_b))) == pytest.approx(0.095, abs=5e-4)


def alpha_by_definition(items):
    """1 - D_o / D_e from pairs of values: within units (each unit's pairs weighted 1/(m_u - 1))
    against all pairs of pairable values in the data."""
    items = [[r for r in item if r is not None] for item in items]
    items = [item for item in items if len(item) >= 2]
    values = [r for item in items for r in item]
    n = len(values)
    observed = (
        sum(
            sum(a != b for i, a in enumerate(item) for j, b in enumerate(item) if i != j) / (len(item) - 1)
            for item in items
        )
        / n
    )
    expected = sum(a != b for i, a in enumerate(values) for j, b in enumerate(values) if i != j) / (n * (n - 1))
    return 1 - observed / expected


@SETTINGS
@given(
    st.lists(st.lists(st.one_of(st.none(), st.sampled_from("ABC")), min_size=1, max_size=5), min_size=1, max_size=25)
)
def test_krippendorff_alpha_follows_its_definition_with_missing_ratings(items):
    pairable = [r for item in items for r in item if r is not None and sum(x is not None for x in item) >= 2]
    assume(len(set(pairable)) >= 2)
    assert stats.krippendorff_alpha(items) == pytest.approx(alpha_by_definition(items), abs=1e-10)


@SETTINGS
@given(st.integers(2, 6), st.lists(st.lists(st.integers(0, 3), min_size=6, max_size=6), min_size=2, max_size=40))
def test_fleiss_kappa_matches_statsmodels(raters, rows):
    items = [row[:raters] for row in rows]
    labels = sorted({r for item in items for r in item})
    assume(len(labels) >= 2)
    table = np.array([[item.count(label) for label in labels] for item in items])
    assert stats.fleiss_kappa(items) == pytest.approx(statsmodels_fleiss_kappa(table, method="fleiss"), abs=1e-10)


def test_agreement_rejects_what_it_cannot_measure():
    with pytest.raises(ValueError, match="same number of raters"):
        stats.fleiss_kappa([["A", "B"], ["A", "B", "A"]])
    with pytest.raises(ValueError, match="same label"):
        stats.krippendorff_alpha([["A", "A"], ["A", "A", None]])
    with pytest.raises(ValueError, match="rated twice"):
        stats.krippendorff_alpha([["A"], ["B", None]])
    with pytest.raises(ValueError, match="sequence of ratings"):
        stats.krippendorff_alpha(["AB"])


# --- pixel debate ----------------------------------------------------------------------------


def test_lie_confusion_counts_lies_argued_and_won():
    records = [
        {"true_label": 4, "lie_label": 9, "liar_won": True},
        {"true_label": 4, "lie_label": 9, "liar_won": False},
        {"true_label": 4, "lie_label": 9, "liar_won": True},
        {"true_label": 7, "lie_label": 1, "liar_won": False},
    ]
    result = stats.lie_confusion(records)
    assert result.won.shape == (10, 10)
    assert (result.won[4, 9], result.argued[4, 9]) == (2, 3)
    assert (result.won[7, 1], result.argued[7, 1]) == (0, 1)
    assert result.won.sum() == 2 and result.argued.sum() == 4
    rates = result.success_rate()
    assert rates[4, 9] == pytest.approx(2 / 3) and np.isnan(rates[0, 1])


@pytest.mark.parametrize(
    "record, message",
    [
        ({"true_label": 3, "lie_label": 3, "liar_won": True}, "differ"),
        ({"true_label": 10, "lie_label": 3, "liar_won": True}, "integer from 0 to 9"),
        ({"true_label": 2, "lie_label": 3}, "keys"),
        ({"true_label": 2, "lie_label": 3, "liar_won": "yes"}, "True or False"),
    ],
)
def test_lie_confusion_rejects_bad_records(record, message):
    with pytest.raises(ValueError, match=message):
        stats.lie_confusion([{"true_label": 1, "lie_label": 2, "liar_won": True}, record])


# --- ids -------------------------------------------------------------------------------------


@SETTINGS
@given(st.lists(st.one_of(st.integers(-3, 3), st.sampled_from(["a", "b", "3"])), min_size=1, max_size=40))
def test_groups_keep_first_seen_order_whatever_the_container(keys):
    expected = list(dict.fromkeys(keys))
    correct = [True] * len(keys)
    assert list(stats.grouped_accuracy(keys, correct)) == expected
    if all(isinstance(k, int) for k in keys) or all(isinstance(k, str) for k in keys):
        assert list(stats.grouped_accuracy(np.array(keys), correct)) == expected
