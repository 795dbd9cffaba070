"""Statistics for debate experiments: accuracy, calibration, ratings, agreement. Pure module.

No Django here: every function takes plain sequences (lists, tuples, numpy arrays) and returns small
frozen dataclasses, so the analysis pages, the exports and notebooks all compute the same numbers.

Conventions used throughout:
- `level` is the confidence level of every interval (0.95 unless given).
- A judgment is "correct" when the judge's final verdict favoured the correct answer.
- `p_correct` is the probability the judge put on the correct answer of a two-answer question.
- Bootstrap intervals are percentile intervals, seeded (`seed`), so the same call gives the same
  numbers. "By question" means the questions are resampled and every judgment of a drawn question
  comes along: judgments of one question are not independent, and resampling single judgments
  would make the intervals too narrow.
- Bad input (empty data, mismatched lengths, probabilities outside [0, 1]) raises ValueError with a
  message that says what is wrong.
"""

from dataclasses import dataclass
from functools import lru_cache
import math

import numpy as np
from scipy import linalg, sparse, stats

from debates import proportions

LOG_FLOOR = 1e-12  # the same floor judging.scoring uses, so a 0 on the right answer is finite


# ---------------------------------------------------------------------------------------------
# Result types


@dataclass(frozen=True)
class Interval:
    low: float
    high: float
    method: str  # "wilson", "bootstrap by question", "newcombe", "t", "bootstrap"


@dataclass(frozen=True)
class Proportion:
    """`successes` out of `total`, with a Wilson interval and, when asked for, a bootstrap one."""

    successes: float
    total: int
    estimate: float
    wilson: Interval
    bootstrap: Interval | None = None


@dataclass(frozen=True)
class Difference:
    """Accuracy of protocol A minus accuracy of protocol B."""

    a: Proportion
    b: Proportion
    estimate: float
    newcombe: Interval
    bootstrap: Interval | None
    test: str  # "two-proportion z-test" or "Fisher exact test"
    p_value: float


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_confidence: float | None  # None for an empty bin
    accuracy: float | None


@dataclass(frozen=True)
class HighConfidence:
    threshold: float
    share: float  # of all judgments, the share at or above the threshold
    accuracy: Proportion | None  # None when no judgment reached the threshold


@dataclass(frozen=True)
class Calibration:
    count: int
    brier: float
    log_score: float
    expected_calibration_error: float
    bins: tuple[ReliabilityBin, ...]
    high_confidence: HighConfidence


@dataclass(frozen=True)
class RoundMean:
    round: int  # 0 for the judge's first report
    count: int  # debates that lasted this long
    mean: float
    interval: Interval | None  # None with a single debate


@dataclass(frozen=True)
class DebaterRecord:
    debater: object
    honest: Proportion | None  # wins when arguing for the correct answer; None if never honest
    dishonest: Proportion | None


@dataclass(frozen=True)
class JudgeRow:
    judge: object
    judgments: int
    accuracy: Proportion
    mean_score: float
    score_interval: Interval | None


@dataclass(frozen=True)
class BradleyTerry:
    """Log-strengths (natural log odds units, mean 0) with percentile bootstrap intervals.

    P(i beats j) = 1 / (1 + exp(-(rating_i - rating_j))). `elo()` gives the familiar scale where
    400 points are 10:1 odds, centred on 1000.
    """

    players: tuple
    ratings: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    games: np.ndarray
    wins: np.ndarray  # ties count one half
    prior: float
    n_boot: int

    def rating_of(self, player) -> float:
        return float(self.ratings[self.players.index(player)])

    def elo(self, values=None) -> np.ndarray:
        values = self.ratings if values is None else values
        return 1000.0 + values * (400.0 / math.log(10.0))

    def rows(self) -> list[dict]:
        """Leaderboard rows, best first."""
        order = np.argsort(-self.ratings, kind="stable")
        rows = []
        for rank, i in enumerate(order, start=1):
            row = {
                "rank": rank,
                "player": self.players[i],
                "rating": float(self.ratings[i]),
                "elo": float(self.elo(self.ratings[i])),
                "games": int(self.games[i]),
                "wins": float(self.wins[i]),
            }
            if self.low is not None and self.high is not None:
                row.update(
                    low=float(self.low[i]),
                    high=float(self.high[i]),
                    elo_low=float(self.elo(self.low[i])),
                    elo_high=float(self.elo(self.high[i])),
                )
            rows.append(row)
        return rows


@dataclass(frozen=True)
class LieConfusion:
    """Pixel debate: rows are the true digit, columns the digit the liar argued for."""

    won: np.ndarray  # (10, 10) lies that won
    argued: np.ndarray  # (10, 10) lies argued

    def success_rate(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.argued > 0, self.won / np.maximum(self.argued, 1), np.nan)


# ---------------------------------------------------------------------------------------------
# Input checks


def _as_bools(values, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence, got shape {array.shape}")
    if array.size and array.dtype != bool:
        if not np.isin(array, (0, 1)).all():
            raise ValueError(f"{name} must hold only True/False (or 1/0)")
    return array.astype(bool)


def _as_probabilities(values, name: str = "p_correct") -> np.ndarray:
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must hold numbers between 0 and 1") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be a flat sequence, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(array).all() or (array < 0).any() or (array > 1).any():
        raise ValueError(f"{name} must hold numbers between 0 and 1")
    return array


def _check_level(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level!r}")
    return level


def _check_same_length(**sequences) -> None:
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) > 1:
        described = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"sequences differ in length: {described}")


def _codes(keys) -> tuple[np.ndarray, list]:
    """Small integer codes for hashable keys, and the keys, in order of first appearance."""
    # Number and string arrays are sorted once instead of looked up key by key (measured 2x faster
    # at 100,000 keys; object arrays sort slower than the dict). Not lists: numpy could turn 1 and
    # "1" into one string.
    if isinstance(keys, np.ndarray) and keys.ndim == 1 and keys.dtype.kind in "biuUS":
        keys_sorted, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        appearance = np.argsort(first)
        rank = np.empty_like(appearance)
        rank[appearance] = np.arange(appearance.size)
        return rank[inverse].astype(np.int64), keys_sorted[appearance].tolist()
    index: dict = {}
    try:
        codes = np.fromiter((index.setdefault(k, len(index)) for k in keys), dtype=np.int64, count=len(keys))
    except TypeError:
        raise ValueError("ids must be hashable values such as numbers or strings") from None
    return codes, list(index)


def _joined(first, second):
    """Two id sequences as one, for _codes: numpy arrays of numbers, or of strings, stay an array
    (the fast path); anything else becomes one list."""
    kinds = {getattr(ids, "dtype", np.dtype(object)).kind for ids in (first, second)}
    if kinds <= set("biu") or (len(kinds) == 1 and kinds <= set("US")):
        return np.concatenate([first, second])
    return list(first) + list(second)


@lru_cache(maxsize=16)
# ---------------------------------------------------------------------------------------------
# Accuracy


def wilson_interval(successes: float, total: int, level: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion (debates.proportions, shared with the pixel
    self-play tables); well behaved at 0 and at `total`."""
    low, high = proportions.wilson_interval(successes, total, level)
    return Interval(low, high, "wilson")


def accuracy(correct, question_ids=None, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> Proportion:
    """Share of correct judgments with a Wilson interval, plus a bootstrap-by-question interval when
    `question_ids` (one per judgment) are given."""
    correct = _as_bools(correct, "correct")
    if correct.size == 0:
        raise ValueError("no judgments to compute an accuracy from")
    successes, total = int(correct.sum()), int(correct.size)
    bootstrap = None
    if question_ids is not None:
        _check_same_length(correct=correct, question_ids=question_ids)
        codes, questions = _codes(question_ids)
        per_question_correct = np.bincount(codes, weights=correct, minlength=len(questions))
        per_question_total = np.bincount(codes, minlength=len(questions)).astype(float)
        replicates = _cluster_bootstrap(
            [per_question_correct, per_question_total], n_boot, seed, lambda sums: sums[0] / sums[1]
        )
        bootstrap = _percentile_interval(replicates, level, "bootstrap by question")
    return Proportion(successes, total, successes / total, wilson_interval(successes, total, level), bootstrap)


def grouped_accuracy(
    groups, correct, question_ids=None, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> dict:
    """`accuracy` per group (protocol, judge kind, ...): {group: Proportion}, groups in first-seen order."""
    _check_same_length(groups=groups, correct=correct)
    if question_ids is not None:
        _check_same_length(groups=groups, question_ids=question_ids)
    codes, names = _codes(groups)
    correct = _as_bools(correct, "correct")
    # Questions as integer codes once for all groups: identity is all the bootstrap needs.
    questions = None if question_ids is None else _codes(question_ids)[0]
    result = {}
    for code, name in enumerate(names):
        mask = codes == code
        result[name] = accuracy(correct[mask], None if questions is None else questions[mask], level, n_boot, seed)
    return result


def _cluster_bootstrap(per_cluster: list[np.ndarray], n_boot: int, seed: int, statistic) -> np.ndarray:
    """Resample clusters with replacement `n_boot` times; `statistic` maps the per-replicate sums
    (one array of length n_boot per input) to the replicate values.

    Clusters with the same values (say, 3 of 4 judgments correct) are interchangeable, so drawing
    Q clusters is drawing multinomial counts over the few distinct kinds of cluster: the same
    distribution as drawing cluster by cluster, at a cost that does not grow with Q."""
    if n_boot < 1:
        raise ValueError("n_boot must be at least 1")
    kinds, frequency = np.unique(np.column_stack(per_cluster), axis=0, return_counts=True)
    clusters = int(frequency.sum())
    rng = np.random.default_rng(seed)
    chunk = max(1, 2_000_000 // len(kinds))  # bounds memory at a few tens of MB for any data
    values = []
    for start in range(0, n_boot, chunk):
        drawn = rng.multinomial(clusters, frequency / clusters, size=min(chunk, n_boot - start))
        sums = list((drawn @ kinds).T)
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(statistic(sums))
    return np.concatenate(values)


def _percentile_interval(replicates: np.ndarray, level: float, method: str) -> Interval:
    replicates = replicates[np.isfinite(replicates)]
    if replicates.size == 0:
        raise ValueError("every bootstrap replicate was undefined; there is too little data")
    tail = (1 - level) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return Interval(float(low), float(high), method)


# ---------------------------------------------------------------------------------------------
# Comparing two protocols


def compare_accuracies(
    correct_a,
    correct_b,
    question_ids_a=None,
    question_ids_b=None,
    level: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Difference:
    """Accuracy of A minus accuracy of B (e.g. debate minus consultancy).

    Interval: Newcombe's hybrid score interval (method 10 of Newcombe 1998, built from the two
    Wilson intervals), which keeps its coverage near 0 and 1 where the Wald interval fails.
    When question ids are given for both, also a bootstrap by question over the union of the two
    sets of questions: a question judged under both protocols is drawn once for both, which keeps
    the pairing of a within-question design.

    Test: the pooled two-proportion z-test (equal to Pearson's chi-square test without continuity
    correction), two-sided; when any expected cell count of the 2x2 table is below 5 the normal
    approximation is poor, and Fisher's exact test (two-sided) is used instead. `test` says which.
    Both tests treat the judgments as independent; with several judgments per question prefer the
    bootstrap interval.
    """
    _check_level(level)
    a = accuracy(correct_a, level=level)
    b = accuracy(correct_b, level=level)
    estimate = a.estimate - b.estimate
    newcombe = Interval(
        estimate - math.hypot(a.estimate - a.wilson.low, b.wilson.high - b.estimate),
        estimate + math.hypot(a.wilson.high - a.estimate, b.estimate - b.wilson.low),
        "newcombe",
    )
    test, p_value = _two_proportion_test(a.successes, a.total, b.successes, b.total)
    bootstrap = None
    if (question_ids_a is None) != (question_ids_b is None):
        raise ValueError("give question ids for both protocols or for neither")
    if question_ids_a is not None:
        bootstrap = _paired_difference_bootstrap(
            correct_a, correct_b, question_ids_a, question_ids_b, level, n_boot, seed
        )
    return Difference(a, b, estimate, newcombe, bootstrap, test, p_value)


def _two_proportion_test(x1: float, n1: int, x2: float, n2: int) -> tuple[str, float]:
    pooled = (x1 + x2) / (n1 + n2)
    expected = (n1 * pooled, n1 * (1 - pooled), n2 * pooled, n2 * (1 - pooled))
    if min(expected) < 5:
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        return "Fisher exact test", float(stats.fisher_exact(table).pvalue)
    z = (x1 / n1 - x2 / n2) / math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    return "two-proportion z-test", float(2 * stats.norm.sf(abs(z)))


def _paired_difference_bootstrap(correct_a, correct_b, ids_a, ids_b, level, n_boot, seed) -> Interval:
    correct_a = _as_bools(correct_a, "correct_a")
    correct_b = _as_bools(correct_b, "correct_b")
    _check_same_length(correct_a=correct_a, question_ids_a=ids_a)
    _check_same_length(correct_b=correct_b, question_ids_b=ids_b)
    codes, questions = _codes(_joined(ids_a, ids_b))
    codes_a, codes_b = codes[: correct_a.size], codes[correct_a.size :]
    q = len(questions)
    columns = [
        np.bincount(codes_a, weights=correct_a, minlength=q),
        np.bincount(codes_a, minlength=q).astype(float),
        np.bincount(codes_b, weights=correct_b, minlength=q),
        np.bincount(codes_b, minlength=q).astype(float),
    ]
    # A replicate that drew no question of one protocol has no accuracy for it; it is left out.
    replicates = _cluster_bootstrap(columns, n_boot, seed, lambda s: s[0] / s[1] - s[2] / s[3])
    return _percentile_interval(replicates, level, "bootstrap by question")


# ---------------------------------------------------------------------------------------------
# Calibration


def brier_score(p_correct) -> float:
    """Mean squared error of the probability on the correct answer: mean((1 - p)^2). 0 is perfect.
    (For two answers this equals the usual binary Brier score of either answer.)"""
    p = _as_probabilities(p_correct)
    return float(np.mean((1 - p) ** 2))


def log_score(p_correct) -> float:
    """Mean log2 p(correct), as the NYU platform scores judges: 0 is perfect, -1 is a coin flip.
    Probabilities are floored at 1e-12 so a confident miss costs about -40, not minus infinity."""
    p = _as_probabilities(p_correct)
    return float(np.mean(np.log2(np.maximum(p, LOG_FLOOR))))


def _confidence_and_correctness(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confidence in the chosen answer and whether it was right; at exactly 0.5 the judge chose
    neither answer, which counts as half right (the expected value of a coin flip)."""
    confidence = np.maximum(p, 1 - p)
    correctness = np.where(p > 0.5, 1.0, np.where(p < 0.5, 0.0, 0.5))
    return confidence, correctness


def reliability_diagram(p_correct, bins: int = 10) -> tuple[ReliabilityBin, ...]:
    """Equal-width bins of confidence (the probability on the chosen answer, so 0.5 to 1): per bin
    the mean confidence, the accuracy and the count. Bins are [low, high), the last also holds 1."""
    p = _as_probabilities(p_correct)
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive whole number, got {bins!r}")
    confidence, correctness = _confidence_and_correctness(p)
    edges = np.linspace(0.5, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="right") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    confidence_sums = np.bincount(which, weights=confidence, minlength=bins)
    correct_sums = np.bincount(which, weights=correctness, minlength=bins)
    result = []
    for i in range(bins):
        filled = counts[i] > 0
        result.append(
            ReliabilityBin(
                float(edges[i]),
                float(edges[i + 1]),
                int(counts[i]),
                float(confidence_sums[i] / counts[i]) if filled else None,
                float(correct_sums[i] / counts[i]) if filled else None,
            )
        )
    return tuple(result)


def expected_calibration_error(p_correct, bins: int = 10) -> float:
    """Sum over the reliability diagram's bins of (share of judgments) * |accuracy - mean confidence|."""
    diagram = reliability_diagram(p_correct, bins)
    return _calibration_gap(diagram, sum(b.count for b in diagram))


def _calibration_gap(diagram: tuple[ReliabilityBin, ...], total: int) -> float:
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.mean_confidence)
            for b in diagram
            if b.accuracy is not None and b.mean_confidence is not None
        )
    )


def accuracy_at_confidence(p_correct, threshold: float = 0.9, level: float = 0.95) -> HighConfidence:
    """Accuracy of the judgments whose confidence in the chosen answer is at least `threshold`."""
    p = _as_probabilities(p_correct)
    if not 0.5 < threshold <= 1:
        raise ValueError(f"threshold must be above 0.5 and at most 1, got {threshold!r}")
    confidence, correctness = _confidence_and_correctness(p)
    confident = confidence >= threshold
    if not confident.any():
        return HighConfidence(threshold, 0.0, None)
    chosen_right = correctness[confident] == 1.0
    return HighConfidence(threshold, float(confident.mean()), accuracy(chosen_right, level=level))


def calibration(p_correct, bins: int = 10, threshold: float = 0.9, level: float = 0.95) -> Calibration:
    """Brier score, log score, expected calibration error, reliability diagram and accuracy at
    high confidence, in one result."""
    p = _as_probabilities(p_correct)
    diagram = reliability_diagram(p, bins)
    return Calibration(
        int(p.size),
        brier_score(p),
        log_score(p),
        _calibration_gap(diagram, p.size),
        diagram,
        accuracy_at_confidence(p, threshold, level),
    )


# ---------------------------------------------------------------------------------------------
# Turn by turn


def probability_by_round(sequences, level: float = 0.95) -> list[RoundMean]:
    """Mean probability on the correct answer after each round, across debates.

    `sequences` holds one sequence per debate: the judge's p(correct) after round 0, 1, ...
    Debates that ended early drop out of the later rounds, so later means describe the debates
    that went on (count says how many). Intervals are Student-t intervals clipped to [0, 1].
    """
    _check_level(level)
    rows = [_as_probabilities(s, f"sequence {i}") for i, s in enumerate(sequences)]
    if not rows:
        raise ValueError("no debates given")
    longest = max(r.size for r in rows)
    result = []
    for round_index in range(longest):
        values = np.array([r[round_index] for r in rows if r.size > round_index])
        mean = float(values.mean())
        interval = None
        if values.size > 1:
            half = stats.t.ppf(0.5 + level / 2, values.size - 1) * values.std(ddof=1) / math.sqrt(values.size)
            interval = Interval(max(0.0, float(mean - half)), min(1.0, float(mean + half)), "t")
        result.append(RoundMean(round_index, int(values.size), mean, interval))
    return result


# ---------------------------------------------------------------------------------------------
# Debaters and judges


def win_rates(debaters, honest, won, level: float = 0.95) -> list[DebaterRecord]:
    """Per debater, wins when arguing for the correct answer (honest) and for the wrong one.

    One entry per debater per debate: `debaters[k]` argued honestly if `honest[k]` and won if
    `won[k]` (the judge's verdict favoured their answer). Debaters in first-seen order.
    """
    _check_same_length(debaters=debaters, honest=honest, won=won)
    honest = _as_bools(honest, "honest")
    won = _as_bools(won, "won")
    codes, names = _codes(debaters)

    def rate(mask):
        if not mask.any():
            return None
        wins, total = int(won[mask].sum()), int(mask.sum())
        return Proportion(wins, total, wins / total, wilson_interval(wins, total, level))

    return [
        DebaterRecord(name, rate((codes == c) & honest), rate((codes == c) & ~honest)) for c, name in enumerate(names)
    ]


def judge_leaderboard(judges, correct, scores, level: float = 0.95) -> list[JudgeRow]:
    """Per judge: accuracy (Wilson) and mean score under the experiment's scoring rule (with a
    Student-t interval); best mean score first."""
    _check_same_length(judges=judges, correct=correct, scores=scores)
    correct = _as_bools(correct, "correct")
    scores = np.asarray(scores, dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite numbers")
    codes, names = _codes(judges)
    count = np.bincount(codes, minlength=len(names))
    right = np.bincount(codes, weights=correct, minlength=len(names))
    mean = np.bincount(codes, weights=scores, minlength=len(names)) / np.maximum(count, 1)
    squares = np.bincount(codes, weights=(scores - mean[codes]) ** 2, minlength=len(names))
    several = count > 1
    sd = np.sqrt(squares / np.where(several, count - 1, 1))
    half = np.zeros(len(names))
    half[several] = stats.t.ppf(0.5 + level / 2, count[several] - 1) * sd[several] / np.sqrt(count[several])
    rows = []
    for c, name in enumerate(names):
        n, wins = int(count[c]), int(right[c])
        interval = Interval(float(mean[c] - half[c]), float(mean[c] + half[c]), "t") if several[c] else None
        judged = Proportion(wins, n, wins / n, wilson_interval(wins, n, level))
        rows.append(JudgeRow(name, n, judged, float(mean[c]), interval))
    rows.sort(key=lambda row: -row.mean_score)
    return rows


# ---------------------------------------------------------------------------------------------
# Bradley-Terry ratings


class _Pairings:
    """Debates reduced to counts per (pair, outcome): the bootstrap resamples these counts."""

    def __init__(self, winners, losers, ties):
        _check_same_length(winners=winners, losers=losers)
        if len(winners) == 0:
            raise ValueError("no debates to rate")
        tie = np.zeros(len(winners), bool) if ties is None else _as_bools(ties, "ties")
        _check_same_length(winners=winners, ties=tie)
        codes, self.players = _codes(list(winners) + list(losers))
        winner, loser = codes[: len(winners)], codes[len(winners) :]
        if (winner == loser).any():
            first = int(np.flatnonzero(winner == loser)[0])
            raise ValueError(f"debate {first}: a player cannot play against themselves")
        p = len(self.players)
        first_player, second_player = np.minimum(winner, loser), np.maximum(winner, loser)
        outcome = np.where(tie, 2, np.where(winner == first_player, 0, 1))  # 0: first won, 1: second won
        pair_key = first_player * p + second_player
        pairs, pair_index = np.unique(pair_key, return_inverse=True)
        self.first, self.second = pairs // p, pairs % p
        categories, category_counts = np.unique(pair_index * 3 + outcome, return_counts=True)
        self.counts = category_counts.astype(float)
        category_pair, category_outcome = categories // 3, categories % 3
        k, c = pairs.size, categories.size
        share_of_first = np.array([1.0, 0.0, 0.5])[category_outcome]
        # category counts (n_boot, C) @ these -> per pair: games, and wins of the first player
        self.to_games = sparse.csr_matrix((np.ones(c), (np.arange(c), category_pair)), shape=(c, k))
        self.to_first_wins = sparse.csr_matrix((share_of_first, (np.arange(c), category_pair)), shape=(c, k))
        rows = np.repeat(np.arange(k), 2)
        # pair differences: rating[first] - rating[second]
        self.difference = sparse.csr_matrix(
            (np.tile([1.0, -1.0], k), (rows, np.ravel(np.column_stack([self.first, self.second])))), shape=(k, p)
        )
        # each pair's contribution to the Hessian (flattened p x p)
        f, s = self.first, self.second
        cells = np.column_stack([f * p + f, s * p + s, f * p + s, s * p + f]).ravel()
        self.to_hessian = sparse.csr_matrix(
            (np.tile([1.0, 1.0, -1.0, -1.0], k), (np.repeat(np.arange(k), 4), cells)), shape=(k, p * p)
        )
        self.games_per_player = np.bincount(codes, minlength=p).astype(int)
        tie_codes = np.concatenate([winner[tie], loser[tie]])
        self.wins_per_player = np.bincount(winner[~tie], minlength=p) + 0.5 * np.bincount(tie_codes, minlength=p)

    def per_pair(self, category_counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        games = (self.to_games.T @ category_counts.T).T
        first_wins = (self.to_first_wins.T @ category_counts.T).T
        return np.asarray(games), np.asarray(first_wins)


def _negative_log_posterior(theta, games, first_wins, pairings, prior):
    d = (pairings.difference @ theta.T).T
    # -[w log s(d) + (n - w) log s(-d)] with log s(x) = -log(1 + e^-x), folded into one logaddexp
    loss = games * np.logaddexp(0, d) - first_wins * d
    return loss.sum(axis=1) + 0.5 * prior * (theta**2).sum(axis=1)


def _solve_positive_definite(matrices: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Solve a batch of symmetric positive definite systems."""
    if matrices.shape[-1] <= 64:
        return np.linalg.solve(matrices, vectors[..., None])[..., 0]
    # From about 100 players OpenBLAS runs each LU solve multi-threaded, which measured 20 to 40
    # times slower on a busy 2-core machine; the Cholesky route stays fast there.
    factors = np.linalg.cholesky(matrices)
    return linalg.cho_solve((factors, True), vectors[..., None])[..., 0]


def _fit_bradley_terry(games, first_wins, pairings, prior, start=None, tolerance=1e-10, max_iterations=200):
    """Newton's method with a backtracking line search, for many replicates at once (one row of
    `games` / `first_wins` per replicate). The L2 prior makes the objective strictly convex, so
    each replicate has one optimum (mean 0 automatically) even when a player never lost."""
    n_rep, p = games.shape[0], len(pairings.players)
    theta = np.zeros((n_rep, p)) if start is None else np.tile(start, (n_rep, 1))
    active = np.arange(n_rep)
    prior_curvature = prior * np.eye(p)
    for _ in range(max_iterations):
        if active.size == 0:
            return theta
        t, n, w = theta[active], games[active], first_wins[active]
        d = (pairings.difference @ t.T).T
        prob = 0.5 * (1 + np.tanh(d / 2))  # logistic, without overflow warnings
        gradient = -(pairings.difference.T @ (w - n * prob).T).T + prior * t
        curvature = n * prob * (1 - prob)
        hessian = np.asarray((pairings.to_hessian.T @ curvature.T).T).reshape(-1, p, p) + prior_curvature
        step = _solve_positive_definite(hessian, gradient)
        decrease = (gradient * step).sum(axis=1)
        scale = np.ones(active.size)
        # Near the optimum the full Newton step is right and rounding would only confuse the check.
        searching = np.flatnonzero(decrease > 1e-9)
        if searching.size:
            ts, ns, ws, steps = t[searching], n[searching], w[searching], step[searching]
            current = _negative_log_posterior(ts, ns, ws, pairings, prior)
            for _ in range(60):
                trial = ts - scale[searching, None] * steps
                worse = (
                    _negative_log_posterior(trial, ns, ws, pairings, prior)
                    > current - 1e-4 * scale[searching] * decrease[searching]
                )
                if not worse.any():
                    break
                scale[searching[worse]] *= 0.5
        theta[active] = t - scale[:, None] * step
        done = np.abs(scale[:, None] * step).max(axis=1) < tolerance
        active = active[~done]
    raise RuntimeError("Bradley-Terry fit did not converge; please report the data that caused this")


def bradley_terry(
    winners, losers, ties=None, prior: float = 0.01, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> BradleyTerry:
    """Bradley-Terry ratings from pairwise outcomes, with bootstrap intervals.

    `winners[k]` beat `losers[k]` in debate k; where `ties[k]` is true the debate was a draw and
    counts half a win for each. The fit maximises the log-likelihood plus a Gaussian prior of
    precision `prior` on each rating (0.01: standard deviation 10, negligible once a player has a
    dozen debates, but it keeps the ratings finite and unique when a player never lost).

    Bootstrap: the debates are resampled with replacement (`n_boot` times, seeded) as multinomial
    counts over the distinct (pair, outcome) combinations, and all replicates are fitted together
    in batched numpy. A player absent from a replicate gets that replicate's prior mean, 0.
    `n_boot=0` skips the intervals.
    """
    _check_level(level)
    if prior <= 0:
        raise ValueError("prior must be positive (it keeps the ratings unique)")
    if n_boot < 0:
        raise ValueError("n_boot cannot be negative")
    pairings = _Pairings(winners, losers, ties)
    games, first_wins = pairings.per_pair(pairings.counts[None, :])
    ratings = _fit_bradley_terry(games, first_wins, pairings, prior)[0]
    low = high = None
    if n_boot:
        rng = np.random.default_rng(seed)
        total = int(pairings.counts.sum())
        p = len(pairings.players)
        chunk = max(1, 4_000_000 // (p * p))  # keeps the batched Hessians under ~32 MB
        batches = []
        for start in range(0, n_boot, chunk):
            draws = rng.multinomial(total, pairings.counts / total, size=min(chunk, n_boot - start))
            # Replicates lie near the full-data fit, so starting there saves Newton steps.
            batches.append(_fit_bradley_terry(*pairings.per_pair(draws.astype(float)), pairings, prior, start=ratings))
        replicates = np.concatenate(batches)
        tail = (1 - level) / 2
        low, high = np.quantile(replicates, [tail, 1 - tail], axis=0)
    return BradleyTerry(
        tuple(pairings.players), ratings, low, high, pairings.games_per_player, pairings.wins_per_player, prior, n_boot
    )


# ---------------------------------------------------------------------------------------------
# Agreement between judges of the same item


def _ratings_per_item(items) -> list[list]:
    cleaned = []
    for i, item in enumerate(items):
        if isinstance(item, (str, bytes)) or not hasattr(item, "__iter__"):
            raise ValueError(f"item {i} must be a sequence of ratings, got {item!r}")
        cleaned.append([r for r in item if r is not None and not (isinstance(r, float) and math.isnan(r))])
    return cleaned


def krippendorff_alpha(items) -> float:
    """Krippendorff's alpha for nominal ratings.

    `items` holds, per item (e.g. per debate), the labels its raters gave; items may have
    different numbers of raters, and None marks a missing rating. Items with fewer than two
    ratings carry no information about agreement and are left out. Computed from the coincidence
    matrix: alpha = 1 - (n - 1) * (disagreeing pairs within items) / (disagreeing pairs overall).
    """
    items = [item for item in _ratings_per_item(items) if len(item) >= 2]
    if not items:
        raise ValueError("alpha needs at least one item rated twice")
    codes, labels = _codes([r for item in items for r in item])
    raters = np.array([len(item) for item in items])
    table = np.zeros((len(items), len(labels)))  # items x labels: how many raters chose each label
    np.add.at(table, (np.repeat(np.arange(len(items)), raters), codes), 1)
    # Each item adds its ordered pairs of ratings by different raters, weighted 1 / (raters - 1).
    weighted = table / (raters - 1)[:, None]
    coincidence = weighted.T @ table - np.diag(weighted.sum(axis=0))
    per_label = coincidence.sum(axis=1)
    n = per_label.sum()
    expected_disagreement = n * n - (per_label**2).sum()
    if expected_disagreement == 0:
        raise ValueError("alpha is undefined when every rating has the same label")
    observed_disagreement = n - np.trace(coincidence)
    return float(1 - (n - 1) * observed_disagreement / expected_disagreement)


def fleiss_kappa(items) -> float:
    """Fleiss' kappa for nominal ratings; every item needs the same number (>= 2) of raters.
    For items with differing numbers of raters use `krippendorff_alpha`."""
    items = _ratings_per_item(items)
    if not items:
        raise ValueError("kappa needs at least one item")
    raters = {len(item) for item in items}
    if len(raters) != 1:
        raise ValueError(
            f"Fleiss' kappa needs the same number of raters on every item, got {sorted(raters)}; "
            "use krippendorff_alpha instead"
        )
    m = raters.pop()
    if m < 2:
        raise ValueError("Fleiss' kappa needs at least two raters per item")
    codes, labels = _codes([r for item in items for r in item])
    table = np.zeros((len(items), len(labels)))
    np.add.at(table, (np.repeat(np.arange(len(items)), m), codes), 1)
    observed = ((table * (table - 1)).sum(axis=1) / (m * (m - 1))).mean()
    label_shares = table.sum(axis=0) / table.sum()
    chance = (label_shares**2).sum()
    if chance == 1:
        raise ValueError("kappa is undefined when every rating has the same label")
    return float((observed - chance) / (1 - chance))


# ---------------------------------------------------------------------------------------------
# Pixel debate


def lie_confusion(records, classes: int = 10) -> LieConfusion:
    """Counts of lies per (true digit, digit the liar argued for), and of those that won.

    Each record is a mapping with `true_label`, `lie_label` (integers 0..classes-1, different) and
    `liar_won` (the judge chose the lie). This is the data of figure 3 of Irving et al. (2018).
    """
    won = np.zeros((classes, classes), dtype=np.int64)
    argued = np.zeros((classes, classes), dtype=np.int64)
    checked = []
    for i, record in enumerate(records):
        try:
            true_label, lie_label, liar_won = record["true_label"], record["lie_label"], record["liar_won"]
        except (KeyError, TypeError):
            raise ValueError(f"record {i} needs the keys true_label, lie_label and liar_won") from None
        for name, value in (("true_label", true_label), ("lie_label", lie_label)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 0 <= value < classes:
                raise ValueError(f"record {i}: {name} must be an integer from 0 to {classes - 1}, got {value!r}")
        if true_label == lie_label:
            raise ValueError(f"record {i}: the lie must differ from the true label ({true_label})")
        if not isinstance(liar_won, (bool, np.bool_)):
            raise ValueError(f"record {i}: liar_won must be True or False, got {liar_won!r}")
        checked.append((int(true_label), int(lie_label), bool(liar_won)))
    for true_label, lie_label, liar_won in checked:
        argued[true_label, lie_label] += 1
        won[true_label, lie_label] += liar_won
    return LieConfusion(won, argued)
