"""An experiment's verdicts turned into the numbers and figures of its analysis page.

The database does the joining and counting; judging.stats does the statistics. One query fetches
a row per verdict straight into numpy arrays (facts) for the accuracy, calibration, judge and
agreement figures; the debater figures and the turn-by-turn figure have their own grouped queries,
whose counts are expanded back into per-judgment arrays with numpy. No Python loop runs per
verdict. Two figures need one sequence per debate (turn by turn, agreement); above SAMPLE_LIMIT
debates they use a seeded random sample of debates and say so.

Every figure is a Figure: an SVG chart, the rows of numbers shown beside it, and the same rows as
the CSV download. A figure whose data is too thin for its statistic carries a note instead.
"""
import concurrent.futures
import csv
import hashlib
import io
import itertools
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import (BooleanField, Case, CharField, Count, F, FloatField, Func, Max, OuterRef, Q,
                              Subquery, Value, When)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf

from debates import background
from debates.models import Participant, Turn
from debates.protocol import JUDGE

from . import stats, svg
from .csv_safety import safe_cell
from .models import Verdict

LEVEL = 0.95
N_BOOT = 1000  # bootstrap replicates for accuracies: enough for stable 95% percentile intervals
N_BOOT_RATINGS = 200  # Bradley-Terry refits: each is a full fit, so the page makes fewer
SAMPLE_LIMIT = 2_000  # debates per figure that needs one Python sequence per debate
SEED = 0
CACHE_SECONDS = 3600

NYU_SOURCE = "nyu-debate-2023"
# Michael et al. (2023), "Debate Helps Supervise Unreliable Experts": final-judgment accuracy and
# number of debates per setting, as reported in the paper.
NYU_PAPER = {
    ("human", "debate"): (0.84, 154),
    ("human", "consultancy"): (0.74, 96),
    ("AI", "debate"): (0.78, 87),
    ("AI", "consultancy"): (0.80, 76),
}


class ProbabilityOfCorrect(Func):
    """probabilities[correct_index] as a float, for a JSON array column and an index expression."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        array, index = (compiler.compile(e) for e in self.get_source_expressions())
        return (f"CAST(json_extract({array[0]}, '$[' || ({index[0]}) || ']') AS REAL)", [*array[1], *index[1]])

    def as_postgresql(self, compiler, connection, **extra):
        array, index = (compiler.compile(e) for e in self.get_source_expressions())
        return f"(({array[0]}) ->> ({index[0]})::integer)::double precision", [*array[1], *index[1]]


# ---------------------------------------------------------------------------------------------
# Which verdicts


def experiment_verdicts(experiment, version_number=None):
    # Filtering on the version ids themselves (not through a join to the versions) lets
    # PostgreSQL estimate how many debates match, and pick hash joins for big experiments.
    versions = experiment.versions.all()
    if version_number is not None:
        versions = versions.filter(number=version_number)
    ids = list(versions.values_list("id", flat=True)) or [-1]  # [-1]: no versions, and still valid SQL
    return Verdict.objects.filter(debate__experiment_version_id__in=ids)


def nyu_verdicts():
    """The final judgments of the NYU debates the paper analysed."""
    included = Q(debate__provenance__included_in_paper=True) | Q(debate__provenance__includedInPaper=True)
    return Verdict.objects.filter(included, debate__source=NYU_SOURCE, live=True)


def data_stamp(verdicts) -> str:
    """Changes whenever a verdict is added or removed: the page polls it to know when to redraw."""
    summary = verdicts.aggregate(count=Count("id"), last=Max("id"))
    return f"{summary['count']}-{summary['last'] or 0}"


# ---------------------------------------------------------------------------------------------
# Expressions shared by the queries


def protocol_label(prefix: str = "debate__"):
    return Coalesce(NullIf(F(f"{prefix}protocol_name"), Value("")), KeyTextTransform("format", f"{prefix}provenance"),
                    Value("unnamed"), output_field=CharField())


def debater_kind(prefix: str = "debate__"):
    """'AI' when any debater seat is an AI agent (imported AI debaters have agent seats too), else 'human'."""
    # An uncorrelated IN is one hashed lookup per row. EXISTS with an outer reference let PostgreSQL
    # probe the participants once per verdict inside the facts aggregates: 3x the whole query's time.
    ai_debates = Participant.objects.filter(agent__isnull=False, answer_index__isnull=False).values("debate_id")
    return Case(When(**{f"{prefix}id__in": ai_debates}, then=Value("AI")), default=Value("human"),
                output_field=CharField())


def judge_name():
    return Coalesce(F("judge__username"), NullIf(F("ai_judge"), Value("")), Value("unknown judge"),
                    output_field=CharField())


def _expand(rows: list[dict], count: str = "n") -> dict:
    """Grouped rows with a count -> one numpy array per column with each row repeated count times.
    Columns keep their natural dtype (numbers, strings, booleans), which the statistics code
    handles faster than Python objects; a column with missing values stays an object array."""
    if not rows:
        return {}
    counts = np.fromiter((r[count] for r in rows), dtype=np.int64, count=len(rows))
    columns = {}
    for key in rows[0]:
        if key == count:
            continue
        values = [r[key] for r in rows]
        column = np.array(values, dtype=object if any(v is None for v in values) else None)
        columns[key] = np.repeat(column, counts)
    return columns


FACT_NAMES = ("id", "debate_id", "question_id", "protocol", "judge_kind", "debaters", "correct", "p", "score",
              "judge_name", "chosen_index", "correct_index")
FACT_TYPES = (np.int64, np.int64, np.int64, str, str, str, bool, float, float, str, np.int64, np.int64)


def facts(verdicts) -> dict:
    """One row per verdict, fetched once for the figures that need per-verdict values: numpy
    arrays of id, debate, question, protocol, judge kind, debater kind, correct, p(correct), score,
    judge name and chosen answer. A plain scan with joins (no GROUP BY to sort) is the cheapest
    way PostgreSQL has to hand these over."""
    query = verdicts.annotate(
        protocol=protocol_label(), debaters=debater_kind(), judge_name=judge_name(),
        p=ProbabilityOfCorrect(F("probabilities"), F("debate__question__correct_index")),
    ).order_by().values_list("id", "debate_id", "debate__question_id", "protocol", "judge_kind", "debaters",
                             "correct", "p", "score", "judge_name", "chosen_index", "debate__question__correct_index")
    sql, params = query.query.sql_with_params()
    if connection.vendor == "postgresql":
        return _facts_as_text_columns(sql, params)
    # The plain cursor hands over 10^5 rows in half the time of the queryset's iterator; these
    # columns need none of Django's conversions (SQLite's 0/1 booleans are cast by numpy below).
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return {}
    return {name: np.array(column, dtype=kind) for name, kind, column in zip(FACT_NAMES, FACT_TYPES, zip(*rows))}


def _integers(one_column) -> np.ndarray:
    """The values of a one-column integer query as a numpy array (on PostgreSQL as one binary value,
    as in _facts_as_text_columns)."""
    sql, params = one_column.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT string_agg(int8send(t.value::int8), ''::bytea) FROM ({sql}) AS t(value)", params)
            packed = cursor.fetchone()[0]
            return np.frombuffer(packed or b"", dtype=">i8").astype(np.int64)
        cursor.execute(sql, params)
        return np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)


SEPARATOR = "\x1f"  # ASCII unit separator between text values: not found in names or labels


def _facts_as_text_columns(sql: str, params) -> dict:
    """PostgreSQL: each column comes back as one value (a single row) that numpy reads in C:
    numbers as their 8-byte binary form, concatenated; booleans one byte each; text joined by
    SEPARATOR. Building 10^6 Python objects for 10^5 rows of 11 columns would cost more than the
    query. All the aggregates of one query see the rows in the same order, so the columns stay aligned."""
    def column(name, kind):
        if kind is bool:
            return f"string_agg(CASE WHEN t.{name} THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''::bytea)"
        if kind is float:  # string_agg skips NULLs: a missing value stands as NaN, as np.array makes it
            return f"string_agg(float8send(COALESCE(t.{name}::float8, 'NaN')), ''::bytea)"
        if kind is str:
            return f"string_agg(t.{name}::text, E'\\x1f')"
        return f"string_agg(int8send(t.{name}::int8), ''::bytea)"

    aggregated = ", ".join(column(name, kind) for name, kind in zip(FACT_NAMES, FACT_TYPES))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), {aggregated} FROM ({sql}) AS t({', '.join(FACT_NAMES)})", params)
        count, *values = cursor.fetchone()
    if not count:
        return {}
    data = {}
    for name, kind, value in zip(FACT_NAMES, FACT_TYPES, values):
        if kind is str:
            data[name] = np.array(value.split(SEPARATOR))
        elif kind is bool:
            data[name] = np.frombuffer(value, dtype=np.uint8) == 1
        else:  # int8send and float8send write big-endian
            data[name] = np.frombuffer(value, dtype=">f8" if kind is float else ">i8").astype(kind)
    return data


# ---------------------------------------------------------------------------------------------
# Figures


@dataclass
class Figure:
    key: str
    title: str
    description: str
    columns: list[str]
    rows: list[dict] = field(default_factory=list)
    svg: str = ""
    note: str = ""
    bins: list = field(default_factory=list)  # calibration: the reliability diagram's bins

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: safe_cell(v) for k, v in row.items()} for row in self.rows)
        return out.getvalue()

    def cells(self, limit: int = 50) -> list[list]:
        """The first rows as lists of values in column order, for the page's tables."""
        return [[row.get(column) for column in self.columns] for row in self.rows[:limit]]

    def as_json(self) -> dict:
        return {"key": self.key, "title": self.title, "description": self.description, "columns": self.columns,
                "rows": self.rows, "note": self.note}


def _r(value, digits=4):
    return None if value is None else round(float(value), digits)


def _proportion_row(label, proportion: stats.Proportion, **extra) -> dict:
    row = {"group": label, "correct": _count(proportion.successes), "judgments": _count(proportion.total),
           "accuracy": _r(proportion.estimate), "wilson_low": _r(proportion.wilson.low),
           "wilson_high": _r(proportion.wilson.high)}
    if proportion.bootstrap is not None:
        row.update(bootstrap_low=_r(proportion.bootstrap.low), bootstrap_high=_r(proportion.bootstrap.high))
    row.update(extra)
    return row


def _count(value):
    """Counts print as integers (130, not 130.0); a weighted count keeps two decimals."""
    return int(value) if float(value).is_integer() else _r(value, 2)


ACCURACY_COLUMNS = ["group", "correct", "judgments", "accuracy", "wilson_low", "wilson_high", "bootstrap_low",
                    "bootstrap_high"]


def _accuracy_chart(rows, title):
    return svg.interval_chart(
        [{"label": f"{r['group']} (n={r['judgments']})", "estimate": r["accuracy"], "low": r["wilson_low"],
          "high": r["wilson_high"], "second_low": r.get("bootstrap_low"), "second_high": r.get("bootstrap_high")}
         for r in rows], title, "judge accuracy (solid: Wilson 95%, dashed: bootstrap by question)", reference=0.5)


def accuracy_figures(data: dict, n_boot=N_BOOT) -> list[Figure]:
    """Accuracy by protocol, judge kind and debater kind, from facts()."""
    figures = []
    for key, column, title in (("accuracy-protocol", "protocol", "Judge accuracy by protocol"),
                               ("accuracy-judge-kind", "judge_kind", "Judge accuracy by judge kind"),
                               ("accuracy-debater-kind", "debaters", "Judge accuracy by debater kind")):
        figure = Figure(key, title, "Share of verdicts that favoured the correct answer, with Wilson 95% "
                        "intervals and 95% intervals from a bootstrap that resamples questions.", ACCURACY_COLUMNS)
        if data:
            order = np.argsort(data[column].astype(str), kind="stable")
            result = stats.grouped_accuracy(data[column][order], data["correct"][order],
                                            data["question_id"][order], LEVEL, n_boot, SEED)
            figure.rows = [_proportion_row(label, p) for label, p in result.items()]
        figure.svg = _accuracy_chart(figure.rows, title)
        figures.append(figure)
    return figures


def comparison_figure(data, n_boot=N_BOOT) -> Figure:
    figure = Figure("protocol-differences", "Differences between protocols",
                    "Accuracy of the first protocol minus the second: Newcombe's hybrid score interval, a "
                    "bootstrap by question (questions judged under both protocols are drawn together), and a "
                    "two-sided test (z-test, or Fisher's exact test when a cell is small).",
                    ["comparison", "difference", "newcombe_low", "newcombe_high", "bootstrap_low", "bootstrap_high",
                     "test", "p_value", "judgments_a", "judgments_b"])
    if data:
        protocols = sorted(set(data["protocol"]), key=_protocol_order)
        for a, b in itertools.combinations(protocols, 2):
            in_a, in_b = data["protocol"] == a, data["protocol"] == b
            try:
                d = stats.compare_accuracies(data["correct"][in_a], data["correct"][in_b],
                                             data["question_id"][in_a], data["question_id"][in_b],
                                             LEVEL, n_boot, SEED)
            except ValueError as error:
                figure.note += f"{a} − {b}: {error}. "
                continue
            figure.rows.append({
                "comparison": f"{a} − {b}", "difference": _r(d.estimate), "newcombe_low": _r(d.newcombe.low),
                "newcombe_high": _r(d.newcombe.high), "bootstrap_low": _r(d.bootstrap.low if d.bootstrap else None),
                "bootstrap_high": _r(d.bootstrap.high if d.bootstrap else None), "test": d.test,
                "p_value": _r(d.p_value, 6), "judgments_a": d.a.total, "judgments_b": d.b.total})
    if not figure.rows and not figure.note:
        figure.note = "Needs verdicts under at least two protocols."
    figure.svg = svg.interval_chart(
        [{"label": r["comparison"], "estimate": r["difference"], "low": r["newcombe_low"], "high": r["newcombe_high"],
          "second_low": r["bootstrap_low"], "second_high": r["bootstrap_high"]} for r in figure.rows],
        figure.title, "difference in accuracy (solid: Newcombe 95%, dashed: bootstrap by question)",
        low=-1, high=1, reference=0)
    return figure


def _protocol_order(name: str):
    """The central comparison first: debate, consultancy, direct, then the rest by name."""
    known = ("debate", "consultancy", "direct")
    return (known.index(name) if name in known else len(known), name)


def calibration_figure(data: dict) -> Figure:
    figure = Figure("calibration", "Calibration",
                    "Brier score (lower is better), mean log2 score (0 is perfect), expected calibration error over "
                    "ten bins of confidence, and accuracy of the verdicts at 90% confidence or more. The chart is the "
                    "reliability diagram of all verdicts: points on the diagonal are perfectly calibrated.",
                    ["group", "judgments", "brier", "log_score", "ece", "share_at_90", "accuracy_at_90",
                     "accuracy_at_90_low", "accuracy_at_90_high"])
    bins = []
    if data:
        p_all = data["p"].astype(float)
        groups = [("all", p_all)] + [(kind, p_all[data["judge_kind"] == kind])
                                     for kind in sorted(set(data["judge_kind"]))]
        for label, p in groups:
            if p.size == 0 or (label != "all" and p.size == p_all.size and len(groups) == 2):
                continue
            c = stats.calibration(p, level=LEVEL)
            high = c.high_confidence
            figure.rows.append({
                "group": label, "judgments": c.count, "brier": _r(c.brier), "log_score": _r(c.log_score),
                "ece": _r(c.expected_calibration_error), "share_at_90": _r(high.share),
                "accuracy_at_90": _r(high.accuracy.estimate if high.accuracy else None),
                "accuracy_at_90_low": _r(high.accuracy.wilson.low if high.accuracy else None),
                "accuracy_at_90_high": _r(high.accuracy.wilson.high if high.accuracy else None)})
            if label == "all":
                bins = [{"low": b.low, "high": b.high, "count": b.count, "mean_confidence": b.mean_confidence,
                         "accuracy": b.accuracy} for b in c.bins]
    figure.bins = bins
    figure.svg = svg.reliability_chart(bins, "Reliability diagram")
    return figure


def _sample_debates(debate_ids: list[int]) -> tuple[list[int], str]:
    if len(debate_ids) <= SAMPLE_LIMIT:
        return debate_ids, ""
    chosen = np.random.default_rng(SEED).choice(np.array(debate_ids), size=SAMPLE_LIMIT, replace=False)
    return sorted(int(i) for i in chosen), (f"From a random sample of {SAMPLE_LIMIT:,} of the {len(debate_ids):,} "
                                            f"debates (seed {SEED}).")


def by_round_figure(verdicts) -> Figure:
    figure = Figure("by-round", "Judge's probability on the correct answer, round by round",
                    "Mean probability the judge put on the correct answer at each of their reports during the debate "
                    "(0 is the first report), with Student-t 95% intervals; debates that ended early drop out of later "
                    "rounds (count says how many remain).",
                    ["protocol", "report", "debates", "mean_p_correct", "low", "high"])
    debate_ids = np.unique(_integers(verdicts.order_by().values_list("debate_id")))  # sorted: the sample is seeded
    debate_ids, figure.note = _sample_debates(debate_ids.tolist())
    reports = (Turn.objects.filter(debate_id__in=debate_ids, seat=JUDGE, kind="feedback", probabilities__isnull=False)
               .annotate(p=ProbabilityOfCorrect(F("probabilities"), F("debate__question__correct_index")),
                         protocol=protocol_label())
               .order_by("debate_id", "id").values_list("debate_id", "protocol", "p"))
    sequences = {}
    for protocol, rows in itertools.groupby(sorted(reports, key=lambda r: (r[1], r[0])), key=lambda r: r[1]):
        sequences[protocol] = [[p for _, _, p in turns] for _, turns in itertools.groupby(rows, key=lambda r: r[0])]
    series = []
    for protocol in sorted(sequences, key=_protocol_order):
        means = stats.probability_by_round(sequences[protocol], LEVEL)
        points = []
        for m in means:
            low, high = (m.interval.low, m.interval.high) if m.interval else (None, None)
            figure.rows.append({"protocol": protocol, "report": m.round, "debates": m.count,
                                "mean_p_correct": _r(m.mean), "low": _r(low), "high": _r(high)})
            points.append((m.round, m.mean, low, high))
        series.append((protocol, points))
    if not series:
        figure.note = "No judge reports during debates yet."
    figure.svg = svg.line_chart(series, figure.title, "judge's report (0 = first)", "p(correct answer)", reference=0.5)
    return figure


# A debater as the analysis names them: their username, else the AI model, else the alias.
PARTICIPANT_NAME_SQL = "COALESCE(u.username, p.agent->>'model', p.agent->>'backend', NULLIF(p.alias, ''), p.seat)"


# Per verdict, the debater seat whose answer was chosen (winner) and the other one (loser), then
# counted by (winner, winner honest, loser, loser honest). {selected} gives the verdicts' id,
# debate_id, chosen_index and correct_index (named in a WITH clause: SQLite takes no column names
# after a subquery's alias).
DEBATER_GROUPS_SQL = f"""
    WITH v(id, debate_id, chosen_index, correct_index) AS ({{selected}})
    SELECT winner, winner_honest, loser, loser_honest, count(*) AS n FROM (
      SELECT max(name) FILTER (WHERE answer_index = chosen_index) AS winner,
             max(CASE WHEN answer_index = correct_index THEN 1 ELSE 0 END)
               FILTER (WHERE answer_index = chosen_index) AS winner_honest,
             max(name) FILTER (WHERE answer_index <> chosen_index) AS loser,
             max(CASE WHEN answer_index = correct_index THEN 1 ELSE 0 END)
               FILTER (WHERE answer_index <> chosen_index) AS loser_honest
      FROM (SELECT v.id AS verdict_id, v.chosen_index, v.correct_index, p.answer_index,
                   {PARTICIPANT_NAME_SQL} AS name
            FROM v JOIN debates_participant p ON p.debate_id = v.debate_id AND p.answer_index IS NOT NULL
            LEFT JOIN auth_user u ON u.id = p.user_id) seats
      GROUP BY verdict_id) per_verdict
    GROUP BY 1, 2, 3, 4
    ORDER BY 1, 2, 3, 4"""  # in a fixed order, so that the bootstrap's seeded draws fall the same way


def _debater_rows(verdicts) -> tuple[list[dict], list[dict]]:
    """(per debater, honest, won: count) and (winner, loser: count), from one grouped query over
    every verdict's debater seats. Debates have one or two debaters (debate, consultancy; direct
    judging has none): per verdict, the seat whose answer was chosen and the other one."""
    # The verdicts' own query supplies their columns: filtering by "id IN (it)" would scan them twice.
    selected, params = (verdicts.order_by().values_list("id", "debate_id", "chosen_index",
                                                         "debate__question__correct_index")
                        .query.sql_with_params())
    with connection.cursor() as cursor:
        cursor.execute(DEBATER_GROUPS_SQL.format(selected=selected), params)
        grouped = cursor.fetchall()
    seats, pairs = [], []
    for winner, winner_honest, loser, loser_honest, count in grouped:
        if winner is not None:
            seats.append({"debater": winner, "honest": bool(winner_honest), "won": True, "n": count})
        if loser is not None:
            seats.append({"debater": loser, "honest": bool(loser_honest), "won": False, "n": count})
        if winner is not None and loser is not None and winner != loser:
            pairs.append({"winner": winner, "loser": loser, "n": count})
    return seats, pairs


def debater_figures(verdicts, n_boot=N_BOOT_RATINGS) -> list[Figure]:
    win_figure = Figure("debater-win-rates", "Debater win rates",
                        "Share of verdicts that favoured the debater's answer, when they argued for the correct "
                        "answer (honest) and for a wrong one (dishonest), with Wilson 95% intervals. Each verdict "
                        "counts once for every debater of its debate.",
                        ["debater", "role", "wins", "verdicts", "win_rate", "low", "high"])
    seats, pairs = _debater_rows(verdicts)
    data = _expand(seats)
    chart_rows = []
    if data:
        for record in stats.win_rates(data["debater"], data["honest"].astype(bool), data["won"].astype(bool), LEVEL):
            for role, p in (("honest", record.honest), ("dishonest", record.dishonest)):
                if p is None:
                    continue
                win_figure.rows.append({"debater": record.debater, "role": role, "wins": int(p.successes),
                                        "verdicts": p.total, "win_rate": _r(p.estimate), "low": _r(p.wilson.low),
                                        "high": _r(p.wilson.high)})
                chart_rows.append({"label": f"{record.debater} · {role}", "estimate": p.estimate,
                                   "low": p.wilson.low, "high": p.wilson.high})
    win_figure.svg = svg.interval_chart(chart_rows[:40], win_figure.title, "win rate (Wilson 95%)", reference=0.5)
    if len(chart_rows) > 40:
        win_figure.note = "The chart shows the first 40 rows; the table and CSV have all."

    rating_figure = Figure("bradley-terry", "Debater ratings (Bradley-Terry)",
                           "Ratings fitted to every two-debater verdict (the debater whose answer the judge chose "
                           "beat the other), on the Elo scale (400 points: 10:1 odds), with 95% intervals from "
                           f"{n_boot} bootstrap refits over the verdicts.",
                           ["rank", "debater", "elo", "elo_low", "elo_high", "games", "wins"])
    games = _expand(pairs)
    if games:
        fit = stats.bradley_terry(games["winner"], games["loser"], n_boot=n_boot, seed=SEED, level=LEVEL)
        for row in fit.rows():
            rating_figure.rows.append({"rank": row["rank"], "debater": row["player"], "elo": _r(row["elo"], 1),
                                       "elo_low": _r(row.get("elo_low"), 1), "elo_high": _r(row.get("elo_high"), 1),
                                       "games": row["games"], "wins": _r(row["wins"], 1)})
    else:
        rating_figure.note = "Needs verdicts on debates with two debaters."
    shown = rating_figure.rows[:40]
    values = [v for r in shown for v in (r["elo_low"], r["elo_high"], r["elo"]) if v is not None] or [900, 1100]
    low, high = min(values) - 20, max(values) + 20
    rating_figure.svg = svg.interval_chart(
        [{"label": r["debater"], "estimate": r["elo"], "low": r["elo_low"], "high": r["elo_high"]} for r in shown],
        rating_figure.title, "rating (Elo scale, 95% bootstrap interval)", low=low, high=high, reference=1000,
        as_percent=False)
    return [win_figure, rating_figure]


def judge_figure(data: dict) -> Figure:
    figure = Figure("judges", "Judge leaderboard",
                    "Per judge: accuracy with a Wilson 95% interval and mean score under the experiment's scoring "
                    "rule (higher is better) with a Student-t 95% interval; best mean score first.",
                    ["rank", "judge", "judgments", "accuracy", "accuracy_low", "accuracy_high", "mean_score",
                     "score_low", "score_high"])
    if data:
        # By judge, then verdict: the same sums (and ties between judges) whatever order the rows came in.
        order = np.lexsort((data["id"], data["judge_name"]))
        board = stats.judge_leaderboard(data["judge_name"][order], data["correct"][order],
                                        data["score"][order].astype(float), LEVEL)
        for rank, row in enumerate(board, start=1):
            figure.rows.append({
                "rank": rank, "judge": row.judge, "judgments": row.judgments, "accuracy": _r(row.accuracy.estimate),
                "accuracy_low": _r(row.accuracy.wilson.low), "accuracy_high": _r(row.accuracy.wilson.high),
                "mean_score": _r(row.mean_score), "score_low": _r(row.score_interval.low if row.score_interval else None),
                "score_high": _r(row.score_interval.high if row.score_interval else None)})
    figure.svg = svg.interval_chart(
        [{"label": f"{r['judge']} (n={r['judgments']})", "estimate": r["accuracy"], "low": r["accuracy_low"],
          "high": r["accuracy_high"]} for r in figure.rows[:30]],
        "Judge accuracy, best mean score first", "accuracy (Wilson 95%)", reference=0.5)
    if len(figure.rows) > 30:
        figure.note = "The chart shows the 30 best; the table and CSV have all."
    return figure


def agreement_figure(data: dict) -> Figure:
    figure = Figure("agreement", "Agreement between judges of the same debate",
                    "Krippendorff's alpha (nominal: which answer each judge chose) over debates with at least two "
                    "verdicts; Fleiss' kappa where every debate has the same number of judges. 1 is perfect agreement, "
                    "0 is what chance gives.",
                    ["pairing", "debates", "ratings", "krippendorff_alpha", "fleiss_kappa"])
    labels = {}
    if data:
        debates, counts = np.unique(data["debate_id"], return_counts=True)
        debate_ids, figure.note = _sample_debates(debates[counts >= 2].tolist())
        chosen_rows = np.isin(data["debate_id"], debate_ids)
        for debate_id, kind, chosen in zip(data["debate_id"][chosen_rows].tolist(),
                                           data["judge_kind"][chosen_rows].tolist(),
                                           data["chosen_index"][chosen_rows].tolist()):
            labels.setdefault(debate_id, {"human": [], "ai": []})[kind].append(chosen)
    pairings = {
        "human-human": [v["human"] for v in labels.values() if len(v["human"]) >= 2],
        "AI-AI": [v["ai"] for v in labels.values() if len(v["ai"]) >= 2],
        "human-AI": [v["human"] + v["ai"] for v in labels.values() if v["human"] and v["ai"]],
        "all judges": [v["human"] + v["ai"] for v in labels.values()],
    }
    computed = []
    for name, items in pairings.items():
        items = [item for item in items if len(item) >= 2]
        if not items or items in computed:  # "all judges" when every shared debate is human-AI
            continue
        computed.append(items)
        row = {"pairing": name, "debates": len(items), "ratings": sum(len(i) for i in items)}
        try:
            row["krippendorff_alpha"] = _r(stats.krippendorff_alpha(items))
        except ValueError as error:
            row["krippendorff_alpha"] = None
            figure.note += f" {name}: {error}."
        if len({len(i) for i in items}) == 1:
            try:
                row["fleiss_kappa"] = _r(stats.fleiss_kappa(items))
            except ValueError:
                row["fleiss_kappa"] = None
        figure.rows.append(row)
    if not figure.rows:
        figure.note = "Needs debates with at least two verdicts."
    figure.svg = svg.interval_chart(
        [{"label": f"{r['pairing']} (n={r['debates']})", "estimate": r.get("krippendorff_alpha"), "low": None,
          "high": None} for r in figure.rows if r.get("krippendorff_alpha") is not None],
        figure.title, "Krippendorff's alpha", low=-1, high=1, reference=0, as_percent=False)
    return figure


def lie_figure(verdicts) -> Figure | None:
    """Pixel debates: for each true digit and the digit the liar argued for, the share of lies that won."""
    image_verdicts = verdicts.filter(debate__question__kind="image")
    if not image_verdicts.exists():
        return None
    figure = Figure("lie-confusion", "Successful lies by digit (pixel debates)",
                    "Rows: the true digit; columns: the digit the dishonest debater argued for; each cell the share of "
                    "those debates the liar won (the judge chose the lie).",
                    ["true_label", "lie_label", "lies", "lies_won", "success_rate"])
    liar = (Participant.objects.filter(debate=OuterRef("debate_id"), answer_index__isnull=False)
            .exclude(answer_index=OuterRef("debate__question__correct_index")).values("answer_index")[:1])
    grouped = (image_verdicts.annotate(lie=Subquery(liar)).filter(lie__isnull=False)
               .annotate(liar_won=Case(When(chosen_index=F("lie"), then=Value(True)), default=Value(False),
                                       output_field=BooleanField()))
               .values("debate__question__answers", "debate__question__correct_index", "lie", "liar_won")
               .annotate(n=Count("id")).order_by())
    records = []
    for row in grouped:
        answers = row["debate__question__answers"]
        try:
            true_label = int(answers[row["debate__question__correct_index"]])
            lie_label = int(answers[row["lie"]])
        except (ValueError, TypeError, IndexError):
            continue  # not a digit question
        records += [{"true_label": true_label, "lie_label": lie_label, "liar_won": bool(row["liar_won"])}] * row["n"]
    if not records:
        figure.note = "No digit debates with a dishonest debater yet."
        return figure
    confusion = stats.lie_confusion(records)
    rates = confusion.success_rate()
    for i in range(10):
        for j in range(10):
            if confusion.argued[i, j]:
                figure.rows.append({"true_label": i, "lie_label": j, "lies": int(confusion.argued[i, j]),
                                    "lies_won": int(confusion.won[i, j]), "success_rate": _r(rates[i, j])})
    matrix = [[None if np.isnan(rates[i, j]) else float(rates[i, j]) for j in range(10)] for i in range(10)]
    digits = [str(d) for d in range(10)]
    figure.svg = svg.heatmap(matrix, digits, digits, figure.title, "true digit", "digit the liar argued for")
    return figure


# ---------------------------------------------------------------------------------------------
# Whole pages


def analyse(verdicts, n_boot: int = N_BOOT, wait: bool = True) -> dict:
    """Every figure for a set of verdicts, cached until a verdict is added or removed.

    With wait=False a page that was computed before is served at once even when verdicts have
    arrived since ("stale": True), and a background thread computes the new figures; the page
    polls and swaps them in when they are ready. Nothing cached yet: computed now either way."""
    query = hashlib.sha256(f"{verdicts.query}:{n_boot}".encode()).hexdigest()[:20]
    key = f"judging:analysis:{query}"
    latest = cache.get(key)
    if latest is None:  # nothing to compare with: compute() takes the stamp from the data it reads
        result = compute(verdicts, n_boot)
        cache.set(key, result, CACHE_SECONDS)
        return result
    with short_queries():
        stamp = data_stamp(verdicts)
    if latest["stamp"] == stamp:
        return latest
    if not wait:
        if cache.add(f"{key}:refreshing", stamp, timeout=600):
            _refresh_in_background(verdicts, n_boot, key)
        return dict(latest, stale=True)
    result = compute(verdicts, n_boot)
    cache.set(key, result, CACHE_SECONDS)
    return result


def _refresh_in_background(verdicts, n_boot, key):
    # A thread of this process in every mode: the refresh holds a queryset, which no task message carries.
    background.start_thread(_refresh, verdicts, n_boot, key, name="analysis-refresh")


def _refresh(verdicts, n_boot, key):
    try:
        cache.set(key, compute(verdicts, n_boot), CACHE_SECONDS)
    finally:
        cache.delete(f"{key}:refreshing")


@contextmanager
def short_queries():
    """A transaction for the analysis queries. They are short, and PostgreSQL's JIT compiler,
    which their cost estimates switch on, takes longer to compile them than to run them."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
                # Room to hash the experiment's debates in memory instead of in batches on disk.
                cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def compute(verdicts, n_boot: int = N_BOOT) -> dict:
    """Every figure, computed now.

    On PostgreSQL, outside a transaction, the figures with their own queries (round by round,
    debaters, lies) are computed on a second connection while this one fetches the facts and
    computes the rest: the two halves cost about the same, so the page takes about half the time
    where two cores are free. Inside a transaction (whose rows another connection cannot see)
    everything runs here, one after the other. The two connections may see a verdict that arrives
    meanwhile differently; the next refresh, which that verdict triggers, settles it."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        with short_queries():
            return _compute(verdicts, n_boot, lambda: _side_figures(verdicts))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        side = pool.submit(_on_own_connection, _side_figures, verdicts)
        with short_queries():
            return _compute(verdicts, n_boot, side.result)


def _side_figures(verdicts) -> dict:
    """The figures that run their own queries rather than read the facts."""
    return {"by_round": by_round_figure(verdicts), "debaters": debater_figures(verdicts), "lies": lie_figure(verdicts)}


def _on_own_connection(function, *args):
    try:
        with short_queries():
            return function(*args)
    finally:
        connection.close()  # this thread's own connection


def _compute(verdicts, n_boot: int, side_figures) -> dict:
    """side_figures: a function that returns _side_figures' result (computing it, or waiting for it)."""
    data = facts(verdicts)
    if data:
        stamp = f"{data['id'].size}-{int(data['id'].max())}"
        summary = {"verdicts": int(data["id"].size), "debates": int(np.unique(data["debate_id"]).size),
                   "questions": int(np.unique(data["question_id"]).size), "correct": int(data["correct"].sum())}
    else:
        stamp, summary = data_stamp(verdicts), {"verdicts": 0, "debates": 0, "questions": 0, "correct": 0}
    accuracy = accuracy_figures(data, n_boot) + [comparison_figure(data, n_boot), calibration_figure(data)]
    judges = [judge_figure(data), agreement_figure(data)]
    side = side_figures()
    figures = accuracy + [side["by_round"]] + side["debaters"] + judges + ([side["lies"]] if side["lies"] else [])
    return {"stamp": stamp, "summary": summary, "figures": figures, "stale": False}


def nyu_reproduction(n_boot: int = N_BOOT) -> Figure:
    """Final-judgment accuracy of the NYU debates included in the paper, per setting (human or AI
    debaters; debate or consultancy), beside the paper's figures."""
    figure = Figure("nyu-reproduction", "NYU 2023: accuracy of the final judgment",
                    "Imported debates marked includedInPaper, by setting; accuracy of the judge's final judgment "
                    "with Wilson and bootstrap-by-question 95% intervals, beside the paper's numbers.",
                    ACCURACY_COLUMNS + ["paper_accuracy", "paper_judgments"])
    # The importer records the setting as {"debaters": "human"/"ai", "format": ...}; the dataset's own
    # metadata says {"isHuman": ..., "isDebate": ...}. Either is read.
    setting = Case(When(debate__provenance__setting__format="debate", then=Value("debate")),
                   When(debate__provenance__setting__isDebate=True, then=Value("debate")),
                   default=Value("consultancy"), output_field=CharField())
    debaters = Case(When(debate__provenance__setting__debaters="human", then=Value("human")),
                    When(debate__provenance__setting__isHuman=True, then=Value("human")), default=Value("AI"),
                    output_field=CharField())
    grouped = list(nyu_verdicts().annotate(debaters=debaters, setting=setting)
                   .values("debaters", "setting", "debate__question_id", "correct").annotate(n=Count("id")).order_by())
    data = _expand(grouped)
    if data:
        labels = np.array([f"{d} {s}" for d, s in zip(data["debaters"], data["setting"])], dtype=object)
        result = stats.grouped_accuracy(labels, data["correct"].astype(bool), data["debate__question_id"], LEVEL,
                                        n_boot, SEED)
        for (debaters_kind, fmt), (paper_accuracy, paper_count) in NYU_PAPER.items():
            label = f"{debaters_kind} {fmt}"
            if label in result:
                figure.rows.append(_proportion_row(label, result[label], paper_accuracy=paper_accuracy,
                                                   paper_judgments=paper_count))
    else:
        figure.note = "No imported NYU debates yet (import them with the NYU importer)."
    figure.svg = _accuracy_chart(figure.rows, figure.title)
    return figure
