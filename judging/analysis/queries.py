"""Which verdicts an analysis reads, and the queries that fetch them: one row per verdict straight into
numpy arrays (facts), grouped counts expanded back into per-judgment arrays, and the expressions
the queries share. No Python loop runs per verdict."""

from contextlib import contextmanager

import numpy as np
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, F, FloatField, Func, Max, Q, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce, NullIf

from debates.models import Participant

from ..models import Verdict


NYU_SOURCE = "nyu-debate-2023"


class ProbabilityOfCorrect(Func):
    """probabilities[correct_index] as a float, for a JSON array column and an index expression."""

    output_field = FloatField()

    def as_sql(self, compiler, connection, **extra):
        array, index = (compiler.compile(e) for e in self.get_source_expressions())
        return (f"CAST(json_extract({array[0]}, '$[' || ({index[0]}) || ']') AS REAL)", [*array[1], *index[1]])

    def as_postgresql(self, compiler, connection, **extra):
        array, index = (compiler.compile(e) for e in self.get_source_expressions())
        return f"(({array[0]}) ->> ({index[0]})::integer)::double precision", [*array[1], *index[1]]


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


def protocol_label(prefix: str = "debate__"):
    return Coalesce(
        NullIf(F(f"{prefix}protocol_name"), Value("")),
        KeyTextTransform("format", f"{prefix}provenance"),
        Value("unnamed"),
        output_field=CharField(),
    )


def debater_kind(prefix: str = "debate__"):
    """'AI' when any debater seat is an AI agent (imported AI debaters have agent seats too), else 'human'."""
    # An uncorrelated IN is one hashed lookup per row. EXISTS with an outer reference let PostgreSQL
    # probe the participants once per verdict inside the facts aggregates: 3x the whole query's time.
    ai_debates = Participant.objects.filter(agent__isnull=False, answer_index__isnull=False).values("debate_id")
    return Case(
        When(**{f"{prefix}id__in": ai_debates}, then=Value("AI")), default=Value("human"), output_field=CharField()
    )


def judge_name():
    return Coalesce(
        F("judge__username"), NullIf(F("ai_judge"), Value("")), Value("unknown judge"), output_field=CharField()
    )


def expand_counts(rows: list[dict], count: str = "n") -> dict:
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


# The facts' columns: (name, what the verdict queryset reads, numpy type).
FACT_COLUMNS = (
    ("id", "id", np.int64),
    ("debate_id", "debate_id", np.int64),
    ("question_id", "debate__question_id", np.int64),
    ("protocol", "protocol", str),
    ("judge_kind", "judge_kind", str),
    ("debaters", "debaters", str),
    ("correct", "correct", bool),
    ("p", "p", float),
    ("score", "score", float),
    ("judge_name", "judge_name", str),
    ("chosen_index", "chosen_index", np.int64),
    ("correct_index", "debate__question__correct_index", np.int64),
)
FACT_NAMES = tuple(name for name, _, _ in FACT_COLUMNS)
FACT_TYPES = tuple(kind for _, _, kind in FACT_COLUMNS)


def facts(verdicts) -> dict:
    """One row per verdict, fetched once for the figures that need per-verdict values: numpy
    arrays of id, debate, question, protocol, judge kind, debater kind, correct, p(correct), score,
    judge name and chosen answer. A plain scan with joins (no GROUP BY to sort) is the cheapest
    way PostgreSQL has to hand these over."""
    query = (
        verdicts.annotate(
            protocol=protocol_label(),
            debaters=debater_kind(),
            judge_name=judge_name(),
            p=ProbabilityOfCorrect(F("probabilities"), F("debate__question__correct_index")),
        )
        .order_by()
        .values_list(*(path for _, path, _ in FACT_COLUMNS))
    )
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


def integer_column(one_column) -> np.ndarray:
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


def debater_rows(verdicts) -> tuple[list[dict], list[dict]]:
    """(per debater, honest, won: count) and (winner, loser: count), from one grouped query over
    every verdict's debater seats. Debates have one or two debaters (debate, consultancy; direct
    judging has none): per verdict, the seat whose answer was chosen and the other one."""
    # The verdicts' own query supplies their columns: filtering by "id IN (it)" would scan them twice.
    selected, params = (
        verdicts.order_by()
        .values_list("id", "debate_id", "chosen_index", "debate__question__correct_index")
        .query.sql_with_params()
    )
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
