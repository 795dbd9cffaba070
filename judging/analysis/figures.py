"""The figures of the analysis page. Every figure is a Figure: an SVG chart, the rows of numbers
shown beside it, and the same rows as the CSV download. A figure whose data is too thin for its
statistic carries a note instead. Most read the facts (queries.facts); the turn-by-turn, debater,
lie and NYU figures run their own grouped queries. Two figures need one sequence per debate (turn
by turn, agreement); above SAMPLE_LIMIT debates they use a seeded random sample and say so."""

import csv
import io
import itertools
from dataclasses import dataclass, field

import numpy as np
from django.db.models import BooleanField, Case, CharField, Count, F, OuterRef, Subquery, Value, When

from debates.models import Participant, Turn
from debates.protocol import JUDGE

from .. import stats, svg
from ..csv_safety import safe_cell
from .queries import ProbabilityOfCorrect, debater_rows, expand_counts, integer_column, nyu_verdicts, protocol_label


LEVEL = 0.95
N_BOOT = 1000  # bootstrap replicates for accuracies: enough for stable 95% percentile intervals
N_BOOT_RATINGS = 200  # Bradley-Terry refits: each is a full fit, so the page makes fewer
SAMPLE_LIMIT = 2_000  # debates per figure that needs one Python sequence per debate
SEED = 0


# Michael et al. (2023), "Debate Helps Supervise Unreliable Experts": final-judgment accuracy and
# number of debates per setting, as reported in the paper.
NYU_PAPER = {
    ("human", "debate"): (0.84, 154),
    ("human", "consultancy"): (0.74, 96),
    ("AI", "debate"): (0.78, 87),
    ("AI", "consultancy"): (0.80, 76),
}


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
        return {
            "key": self.key,
            "title": self.title,
            "description": self.description,
            "columns": self.columns,
            "rows": self.rows,
            "note": self.note,
        }


def _r(value, digits=4):
    return None if value is None else round(float(value), digits)


def _proportion_row(label, proportion: stats.Proportion, **extra) -> dict:
    row = {
        "group": label,
        "correct": _count(proportion.successes),
        "judgments": _count(proportion.total),
        "accuracy": _r(proportion.estimate),
        "wilson_low": _r(proportion.wilson.low),
        "wilson_high": _r(proportion.wilson.high),
    }
    if proportion.bootstrap is not None:
        row.update(bootstrap_low=_r(proportion.bootstrap.low), bootstrap_high=_r(proportion.bootstrap.high))
    row.update(extra)
    return row


def _count(value):
    """Counts print as integers (130, not 130.0); a weighted count keeps two decimals."""
    return int(value) if float(value).is_integer() else _r(value, 2)


ACCURACY_COLUMNS = [
    "group",
    "correct",
    "judgments",
    "accuracy",
    "wilson_low",
    "wilson_high",
    "bootstrap_low",
    "bootstrap_high",
]


def _accuracy_chart(rows, title):
    return svg.interval_chart(
        [
            {
                "label": f"{r['group']} (n={r['judgments']})",
                "estimate": r["accuracy"],
                "low": r["wilson_low"],
                "high": r["wilson_high"],
                "second_low": r.get("bootstrap_low"),
                "second_high": r.get("bootstrap_high"),
            }
            for r in rows
        ],
        title,
        "judge accuracy (solid: Wilson 95%, dashed: bootstrap by question)",
        reference=0.5,
    )


def accuracy_figures(data: dict, n_boot=N_BOOT) -> list[Figure]:
    """Accuracy by protocol, judge kind and debater kind, from facts()."""
    figures = []
    for key, column, title in (
        ("accuracy-protocol", "protocol", "Judge accuracy by protocol"),
        ("accuracy-judge-kind", "judge_kind", "Judge accuracy by judge kind"),
        ("accuracy-debater-kind", "debaters", "Judge accuracy by debater kind"),
    ):
        figure = Figure(
            key,
            title,
            "Share of verdicts that favoured the correct answer, with Wilson 95% "
            "intervals and 95% intervals from a bootstrap that resamples questions.",
            ACCURACY_COLUMNS,
        )
        if data:
            order = np.argsort(data[column].astype(str), kind="stable")
            result = stats.grouped_accuracy(
                data[column][order], data["correct"][order], data["question_id"][order], LEVEL, n_boot, SEED
            )
            figure.rows = [_proportion_row(label, p) for label, p in result.items()]
        figure.svg = _accuracy_chart(figure.rows, title)
        figures.append(figure)
    return figures


def comparison_figure(data, n_boot=N_BOOT) -> Figure:
    figure = Figure(
        "protocol-differences",
        "Differences between protocols",
        "Accuracy of the first protocol minus the second: Newcombe's hybrid score interval, a "
        "bootstrap by question (questions judged under both protocols are drawn together), and a "
        "two-sided test (z-test, or Fisher's exact test when a cell is small).",
        [
            "comparison",
            "difference",
            "newcombe_low",
            "newcombe_high",
            "bootstrap_low",
            "bootstrap_high",
            "test",
            "p_value",
            "judgments_a",
            "judgments_b",
        ],
    )
    if data:
        protocols = sorted(set(data["protocol"]), key=_protocol_order)
        for a, b in itertools.combinations(protocols, 2):
            in_a, in_b = data["protocol"] == a, data["protocol"] == b
            try:
                d = stats.compare_accuracies(
                    data["correct"][in_a],
                    data["correct"][in_b],
                    data["question_id"][in_a],
                    data["question_id"][in_b],
                    LEVEL,
                    n_boot,
                    SEED,
                )
            except ValueError as error:
                figure.note += f"{a} − {b}: {error}. "
                continue
            figure.rows.append(
                {
                    "comparison": f"{a} − {b}",
                    "difference": _r(d.estimate),
                    "newcombe_low": _r(d.newcombe.low),
                    "newcombe_high": _r(d.newcombe.high),
                    "bootstrap_low": _r(d.bootstrap.low if d.bootstrap else None),
                    "bootstrap_high": _r(d.bootstrap.high if d.bootstrap else None),
                    "test": d.test,
                    "p_value": _r(d.p_value, 6),
                    "judgments_a": d.a.total,
                    "judgments_b": d.b.total,
                }
            )
    if not figure.rows and not figure.note:
        figure.note = "Needs verdicts under at least two protocols."
    figure.svg = svg.interval_chart(
        [
            {
                "label": r["comparison"],
                "estimate": r["difference"],
                "low": r["newcombe_low"],
                "high": r["newcombe_high"],
                "second_low": r["bootstrap_low"],
                "second_high": r["bootstrap_high"],
            }
            for r in figure.rows
        ],
        figure.title,
        "difference in accuracy (solid: Newcombe 95%, dashed: bootstrap by question)",
        low=-1,
        high=1,
        reference=0,
    )
    return figure


def _protocol_order(name: str):
    """The central comparison first: debate, consultancy, direct, then the rest by name."""
    known = ("debate", "consultancy", "direct")
    return (known.index(name) if name in known else len(known), name)


def calibration_figure(data: dict) -> Figure:
    figure = Figure(
        "calibration",
        "Calibration",
        "Brier score (lower is better), mean log2 score (0 is perfect), expected calibration error over "
        "ten bins of confidence, and accuracy of the verdicts at 90% confidence or more. The chart is the "
        "reliability diagram of all verdicts: points on the diagonal are perfectly calibrated.",
        [
            "group",
            "judgments",
            "brier",
            "log_score",
            "ece",
            "share_at_90",
            "accuracy_at_90",
            "accuracy_at_90_low",
            "accuracy_at_90_high",
        ],
    )
    bins = []
    if data:
        p_all = data["p"].astype(float)
        groups = [("all", p_all)] + [
            (kind, p_all[data["judge_kind"] == kind]) for kind in sorted(set(data["judge_kind"]))
        ]
        for label, p in groups:
            if p.size == 0 or (label != "all" and p.size == p_all.size and len(groups) == 2):
                continue
            c = stats.calibration(p, level=LEVEL)
            high = c.high_confidence
            figure.rows.append(
                {
                    "group": label,
                    "judgments": c.count,
                    "brier": _r(c.brier),
                    "log_score": _r(c.log_score),
                    "ece": _r(c.expected_calibration_error),
                    "share_at_90": _r(high.share),
                    "accuracy_at_90": _r(high.accuracy.estimate if high.accuracy else None),
                    "accuracy_at_90_low": _r(high.accuracy.wilson.low if high.accuracy else None),
                    "accuracy_at_90_high": _r(high.accuracy.wilson.high if high.accuracy else None),
                }
            )
            if label == "all":
                bins = [
                    {
                        "low": b.low,
                        "high": b.high,
                        "count": b.count,
                        "mean_confidence": b.mean_confidence,
                        "accuracy": b.accuracy,
                    }
                    for b in c.bins
                ]
    figure.bins = bins
    figure.svg = svg.reliability_chart(bins, "Reliability diagram")
    return figure


def _sample_debates(debate_ids: list[int]) -> tuple[list[int], str]:
    if len(debate_ids) <= SAMPLE_LIMIT:
        return debate_ids, ""
    chosen = np.random.default_rng(SEED).choice(np.array(debate_ids), size=SAMPLE_LIMIT, replace=False)
    return sorted(int(i) for i in chosen), (
        f"From a random sample of {SAMPLE_LIMIT:,} of the {len(debate_ids):,} debates (seed {SEED})."
    )


def by_round_figure(verdicts) -> Figure:
    figure = Figure(
        "by-round",
        "Judge's probability on the correct answer, round by round",
        "Mean probability the judge put on the correct answer at each of their reports during the debate "
        "(0 is the first report), with Student-t 95% intervals; debates that ended early drop out of later "
        "rounds (count says how many remain).",
        ["protocol", "report", "debates", "mean_p_correct", "low", "high"],
    )
    debate_ids = np.unique(integer_column(verdicts.order_by().values_list("debate_id")))  # sorted: the sample is seeded
    debate_ids, figure.note = _sample_debates(debate_ids.tolist())
    reports = (
        Turn.objects.filter(debate_id__in=debate_ids, seat=JUDGE, kind="feedback", probabilities__isnull=False)
        .annotate(
            p=ProbabilityOfCorrect(F("probabilities"), F("debate__question__correct_index")), protocol=protocol_label()
        )
        .order_by("debate_id", "id")
        .values_list("debate_id", "protocol", "p")
    )
    sequences = {}
    for protocol, rows in itertools.groupby(sorted(reports, key=lambda r: (r[1], r[0])), key=lambda r: r[1]):
        sequences[protocol] = [[p for _, _, p in turns] for _, turns in itertools.groupby(rows, key=lambda r: r[0])]
    series = []
    for protocol in sorted(sequences, key=_protocol_order):
        means = stats.probability_by_round(sequences[protocol], LEVEL)
        points = []
        for m in means:
            low, high = (m.interval.low, m.interval.high) if m.interval else (None, None)
            figure.rows.append(
                {
                    "protocol": protocol,
                    "report": m.round,
                    "debates": m.count,
                    "mean_p_correct": _r(m.mean),
                    "low": _r(low),
                    "high": _r(high),
                }
            )
            points.append((m.round, m.mean, low, high))
        series.append((protocol, points))
    if not series:
        figure.note = "No judge reports during debates yet."
    figure.svg = svg.line_chart(series, figure.title, "judge's report (0 = first)", "p(correct answer)", reference=0.5)
    return figure


def debater_figures(verdicts, n_boot=N_BOOT_RATINGS) -> list[Figure]:
    win_figure = Figure(
        "debater-win-rates",
        "Debater win rates",
        "Share of verdicts that favoured the debater's answer, when they argued for the correct "
        "answer (honest) and for a wrong one (dishonest), with Wilson 95% intervals. Each verdict "
        "counts once for every debater of its debate.",
        ["debater", "role", "wins", "verdicts", "win_rate", "low", "high"],
    )
    seats, pairs = debater_rows(verdicts)
    data = expand_counts(seats)
    chart_rows = []
    if data:
        for record in stats.win_rates(data["debater"], data["honest"].astype(bool), data["won"].astype(bool), LEVEL):
            for role, p in (("honest", record.honest), ("dishonest", record.dishonest)):
                if p is None:
                    continue
                win_figure.rows.append(
                    {
                        "debater": record.debater,
                        "role": role,
                        "wins": int(p.successes),
                        "verdicts": p.total,
                        "win_rate": _r(p.estimate),
                        "low": _r(p.wilson.low),
                        "high": _r(p.wilson.high),
                    }
                )
                chart_rows.append(
                    {
                        "label": f"{record.debater} · {role}",
                        "estimate": p.estimate,
                        "low": p.wilson.low,
                        "high": p.wilson.high,
                    }
                )
    win_figure.svg = svg.interval_chart(chart_rows[:40], win_figure.title, "win rate (Wilson 95%)", reference=0.5)
    if len(chart_rows) > 40:
        win_figure.note = "The chart shows the first 40 rows; the table and CSV have all."

    rating_figure = Figure(
        "bradley-terry",
        "Debater ratings (Bradley-Terry)",
        "Ratings fitted to every two-debater verdict (the debater whose answer the judge chose "
        "beat the other), on the Elo scale (400 points: 10:1 odds), with 95% intervals from "
        f"{n_boot} bootstrap refits over the verdicts.",
        ["rank", "debater", "elo", "elo_low", "elo_high", "games", "wins"],
    )
    games = expand_counts(pairs)
    if games:
        fit = stats.bradley_terry(games["winner"], games["loser"], n_boot=n_boot, seed=SEED, level=LEVEL)
        for row in fit.rows():
            rating_figure.rows.append(
                {
                    "rank": row["rank"],
                    "debater": row["player"],
                    "elo": _r(row["elo"], 1),
                    "elo_low": _r(row.get("elo_low"), 1),
                    "elo_high": _r(row.get("elo_high"), 1),
                    "games": row["games"],
                    "wins": _r(row["wins"], 1),
                }
            )
    else:
        rating_figure.note = "Needs verdicts on debates with two debaters."
    shown = rating_figure.rows[:40]
    values = [v for r in shown for v in (r["elo_low"], r["elo_high"], r["elo"]) if v is not None] or [900, 1100]
    low, high = min(values) - 20, max(values) + 20
    rating_figure.svg = svg.interval_chart(
        [{"label": r["debater"], "estimate": r["elo"], "low": r["elo_low"], "high": r["elo_high"]} for r in shown],
        rating_figure.title,
        "rating (Elo scale, 95% bootstrap interval)",
        low=low,
        high=high,
        reference=1000,
        as_percent=False,
    )
    return [win_figure, rating_figure]


def judge_figure(data: dict) -> Figure:
    figure = Figure(
        "judges",
        "Judge leaderboard",
        "Per judge: accuracy with a Wilson 95% interval and mean score under the experiment's scoring "
        "rule (higher is better) with a Student-t 95% interval; best mean score first.",
        [
            "rank",
            "judge",
            "judgments",
            "accuracy",
            "accuracy_low",
            "accuracy_high",
            "mean_score",
            "score_low",
            "score_high",
        ],
    )
    if data:
        # By judge, then verdict: the same sums (and ties between judges) whatever order the rows came in.
        order = np.lexsort((data["id"], data["judge_name"]))
        board = stats.judge_leaderboard(
            data["judge_name"][order], data["correct"][order], data["score"][order].astype(float), LEVEL
        )
        for rank, row in enumerate(board, start=1):
            figure.rows.append(
                {
                    "rank": rank,
                    "judge": row.judge,
                    "judgments": row.judgments,
                    "accuracy": _r(row.accuracy.estimate),
                    "accuracy_low": _r(row.accuracy.wilson.low),
                    "accuracy_high": _r(row.accuracy.wilson.high),
                    "mean_score": _r(row.mean_score),
                    "score_low": _r(row.score_interval.low if row.score_interval else None),
                    "score_high": _r(row.score_interval.high if row.score_interval else None),
                }
            )
    figure.svg = svg.interval_chart(
        [
            {
                "label": f"{r['judge']} (n={r['judgments']})",
                "estimate": r["accuracy"],
                "low": r["accuracy_low"],
                "high": r["accuracy_high"],
            }
            for r in figure.rows[:30]
        ],
        "Judge accuracy, best mean score first",
        "accuracy (Wilson 95%)",
        reference=0.5,
    )
    if len(figure.rows) > 30:
        figure.note = "The chart shows the 30 best; the table and CSV have all."
    return figure


def agreement_figure(data: dict) -> Figure:
    figure = Figure(
        "agreement",
        "Agreement between judges of the same debate",
        "Krippendorff's alpha (nominal: which answer each judge chose) over debates with at least two "
        "verdicts; Fleiss' kappa where every debate has the same number of judges. 1 is perfect agreement, "
        "0 is what chance gives.",
        ["pairing", "debates", "ratings", "krippendorff_alpha", "fleiss_kappa"],
    )
    labels = {}
    if data:
        debates, counts = np.unique(data["debate_id"], return_counts=True)
        debate_ids, figure.note = _sample_debates(debates[counts >= 2].tolist())
        chosen_rows = np.isin(data["debate_id"], debate_ids)
        for debate_id, kind, chosen in zip(
            data["debate_id"][chosen_rows].tolist(),
            data["judge_kind"][chosen_rows].tolist(),
            data["chosen_index"][chosen_rows].tolist(),
        ):
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
        [
            {
                "label": f"{r['pairing']} (n={r['debates']})",
                "estimate": r.get("krippendorff_alpha"),
                "low": None,
                "high": None,
            }
            for r in figure.rows
            if r.get("krippendorff_alpha") is not None
        ],
        figure.title,
        "Krippendorff's alpha",
        low=-1,
        high=1,
        reference=0,
        as_percent=False,
    )
    return figure


def lie_figure(verdicts) -> Figure | None:
    """Pixel debates: for each true digit and the digit the liar argued for, the share of lies that won."""
    image_verdicts = verdicts.filter(debate__question__kind="image")
    if not image_verdicts.exists():
        return None
    figure = Figure(
        "lie-confusion",
        "Successful lies by digit (pixel debates)",
        "Rows: the true digit; columns: the digit the dishonest debater argued for; each cell the share of "
        "those debates the liar won (the judge chose the lie).",
        ["true_label", "lie_label", "lies", "lies_won", "success_rate"],
    )
    liar = (
        Participant.objects.filter(debate=OuterRef("debate_id"), answer_index__isnull=False)
        .exclude(answer_index=OuterRef("debate__question__correct_index"))
        .values("answer_index")[:1]
    )
    grouped = (
        image_verdicts.annotate(lie=Subquery(liar))
        .filter(lie__isnull=False)
        .annotate(
            liar_won=Case(
                When(chosen_index=F("lie"), then=Value(True)), default=Value(False), output_field=BooleanField()
            )
        )
        .values("debate__question__answers", "debate__question__correct_index", "lie", "liar_won")
        .annotate(n=Count("id"))
        .order_by()
    )
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
                figure.rows.append(
                    {
                        "true_label": i,
                        "lie_label": j,
                        "lies": int(confusion.argued[i, j]),
                        "lies_won": int(confusion.won[i, j]),
                        "success_rate": _r(rates[i, j]),
                    }
                )
    matrix = [[None if np.isnan(rates[i, j]) else float(rates[i, j]) for j in range(10)] for i in range(10)]
    digits = [str(d) for d in range(10)]
    figure.svg = svg.heatmap(matrix, digits, digits, figure.title, "true digit", "digit the liar argued for")
    return figure


def nyu_reproduction(n_boot: int = N_BOOT) -> Figure:
    """Final-judgment accuracy of the NYU debates included in the paper, per setting (human or AI
    debaters; debate or consultancy), beside the paper's figures."""
    figure = Figure(
        "nyu-reproduction",
        "NYU 2023: accuracy of the final judgment",
        "Imported debates marked includedInPaper, by setting; accuracy of the judge's final judgment "
        "with Wilson and bootstrap-by-question 95% intervals, beside the paper's numbers.",
        ACCURACY_COLUMNS + ["paper_accuracy", "paper_judgments"],
    )
    # The importer records the setting as {"debaters": "human"/"ai", "format": ...}; the dataset's own
    # metadata says {"isHuman": ..., "isDebate": ...}. Either is read.
    setting = Case(
        When(debate__provenance__setting__format="debate", then=Value("debate")),
        When(debate__provenance__setting__isDebate=True, then=Value("debate")),
        default=Value("consultancy"),
        output_field=CharField(),
    )
    debaters = Case(
        When(debate__provenance__setting__debaters="human", then=Value("human")),
        When(debate__provenance__setting__isHuman=True, then=Value("human")),
        default=Value("AI"),
        output_field=CharField(),
    )
    grouped = list(
        nyu_verdicts()
        .annotate(debaters=debaters, setting=setting)
        .values("debaters", "setting", "debate__question_id", "correct")
        .annotate(n=Count("id"))
        .order_by()
    )
    data = expand_counts(grouped)
    if data:
        labels = np.array([f"{d} {s}" for d, s in zip(data["debaters"], data["setting"])], dtype=object)
        result = stats.grouped_accuracy(
            labels, data["correct"].astype(bool), data["debate__question_id"], LEVEL, n_boot, SEED
        )
        for (debaters_kind, fmt), (paper_accuracy, paper_count) in NYU_PAPER.items():
            label = f"{debaters_kind} {fmt}"
            if label in result:
                figure.rows.append(
                    _proportion_row(label, result[label], paper_accuracy=paper_accuracy, paper_judgments=paper_count)
                )
    else:
        figure.note = "No imported NYU debates yet (import them with the NYU importer)."
    figure.svg = _accuracy_chart(figure.rows, figure.title)
    return figure
