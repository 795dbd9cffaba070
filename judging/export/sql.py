"""The SQL of an export: PostgreSQL builds each JSONL record itself (json_build_object), and each tidy
CSV table, with identities as usernames or pseudonyms and hidden material only when asked for."""

import json

from django.contrib.auth import get_user_model
from django.db import connection

from ..csv_safety import safe_cell_sql
from ..quality import verdict_quality_sql
from .fields import EXTRA, QUOTE_FIELDS
from .options import CSV_TABLES, ExportError, ExportOptions, pseudonym


_JSON_TYPES = {"int": "number", "float": "number", "bool": "boolean", "string": "string"}


def _integral_sql(e: str) -> str:
    number = f"({e} #>> '{{}}')::numeric"
    return f"({number} = trunc({number}) AND abs({number}) < 9e18)"


def _conforms_sql(v: str, kind: str) -> str:
    """SQL true when the jsonb value v has the declared kind (CASE keeps casts from running early)."""

    def element(e: str, scalar: str) -> str:
        typed = f"jsonb_typeof({e}) = '{_JSON_TYPES[scalar]}'"
        return f"CASE WHEN {typed} THEN {_integral_sql(e)} ELSE FALSE END" if scalar == "int" else typed

    if kind.startswith("list<"):
        return (
            f"CASE WHEN jsonb_typeof({v}) = 'array' THEN NOT EXISTS (SELECT 1 FROM jsonb_array_elements({v}) el "
            f"WHERE NOT ({element('el', kind[5:-1])})) ELSE FALSE END"
        )
    return element(v, kind)


def _declared_sql(x: str, fields) -> str:
    """json_build_object of a jsonb object x as its declared fields (see `declared`)."""
    parts, kept = [], []
    for f in fields:
        if f.name == EXTRA:
            continue
        v = f"({x} -> '{f.name}')"
        conforms = _conforms_sql(v, f.kind)
        if f.kind == "int":
            value = f"to_jsonb(({v} #>> '{{}}')::numeric::bigint)"
        elif f.kind == "list<int>":
            value = (
                f"(SELECT COALESCE(jsonb_agg(to_jsonb((el #>> '{{}}')::numeric::bigint) ORDER BY n), '[]') "
                f"FROM jsonb_array_elements({v}) WITH ORDINALITY AS els(el, n))"
            )
        else:
            value = v
        parts.append(f"'{f.name}', CASE WHEN {conforms} THEN {value} END")
        kept.append(f"CASE WHEN {v} IS NULL OR jsonb_typeof({v}) = 'null' OR {conforms} THEN '{f.name}' END")
    others = f"({x} - array_remove(ARRAY[{', '.join(kept)}]::text[], NULL))"
    parts.append(f"'{EXTRA}', NULLIF({others}, '{{}}'::jsonb)::text")
    return f"json_build_object({', '.join(parts)})"


def _quotes_are_objects_sql(quotes: str) -> str:
    return (
        f"(jsonb_typeof({quotes}) = 'array' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements({quotes}) qo "
        f"WHERE jsonb_typeof(qo) <> 'object'))"
    )


def _quotes_sql(payload: str) -> str:
    """A turn's quotes as declared structs, in order; null when the turn has no list of quote objects
    (its payload_json then keeps whatever `quotes` holds)."""
    quotes = f"{payload} -> 'quotes'"
    return (
        f"CASE WHEN {_quotes_are_objects_sql(quotes)} THEN COALESCE((SELECT json_agg("
        f"{_declared_sql('qx', QUOTE_FIELDS)} ORDER BY qn) FROM jsonb_array_elements({quotes}) "
        f"WITH ORDINALITY AS qs(qx, qn)), '[]') END"
    )


def _payload_sql(payload: str) -> str:
    declared_quotes = _quotes_are_objects_sql(f"{payload} -> 'quotes'")
    return f"(CASE WHEN {declared_quotes} THEN {payload} - 'quotes' ELSE {payload} END)::text"


def _identity(column: str, options: ExportOptions) -> str:
    """SQL for a user id column as the export shows it: the username, or the pseudonym from the
    `names` map that _names_cte puts in front of the query."""
    if options.identities:
        return f"(SELECT u.username FROM auth_user u WHERE u.id = {column})"
    return f"((SELECT m FROM names) ->> ({column})::text)"


def _names_cte(options: ExportOptions, params: list) -> str:
    """WITH clause holding every user's pseudonym as one JSON object (id -> pseudonym), computed
    here once per user rather than in the database once per row."""
    if options.identities:
        return ""
    User = get_user_model()
    names = {str(i): pseudonym(i, options.key) for i in User.objects.values_list("id", flat=True).iterator()}
    params.append(json.dumps(names))
    return "WITH names AS MATERIALIZED (SELECT %s::jsonb AS m) "


def _where(options: ExportOptions, params: list) -> str:
    clauses = ["TRUE"]
    if options.experiment_ids is not None:
        clauses.append("ev.experiment_id = ANY(%s)")
        params.append(list(options.experiment_ids))
    if options.version_number is not None:
        clauses.append("ev.number = %s")
        params.append(options.version_number)
    if options.source is not None:
        clauses.append("d.source = %s")
        params.append(options.source)
    if options.protocol_name is not None:
        clauses.append("d.protocol_name = %s")
        params.append(options.protocol_name)
    if options.judge_kind is not None:
        clauses.append("v.judge_kind = %s")
        params.append(options.judge_kind)
    return " AND ".join(clauses)


# A question's passage: its shared story (stored once), else its own hidden material.
PASSAGE_SQL = "COALESCE((SELECT st.text FROM debates_story st WHERE st.id = q.story_id), q.hidden_material)"

FROM_VERDICTS = """
    FROM judging_verdict v
    JOIN debates_debate d ON d.id = v.debate_id
    JOIN debates_question q ON q.id = d.question_id
    LEFT JOIN debates_experimentversion ev ON ev.id = d.experiment_version_id
    LEFT JOIN debates_experiment e ON e.id = ev.experiment_id"""


def record_sql(options: ExportOptions, after_id: int | None = None, limit: int | None = None) -> tuple[str, list]:
    """SELECT of one JSON text per verdict, in verdict id order."""
    params: list = []
    hidden = "TRUE" if options.include_hidden else "FALSE"
    # Parameters must appear in the order of the placeholders in the final text.
    names = _names_cte(options, params)
    created_by = _identity("d.created_by_id", options)
    participant = _identity("p.user_id", options)
    author = _identity("t.author_id", options)
    judge = _identity("v.judge_id", options)
    where = _where(options, params)
    page = ""
    if after_id is not None:
        where += " AND v.id > %s"
        params.append(after_id)
    if limit is not None:
        page = " LIMIT %s"
        params.append(limit)
    sql = f"""
    {names}SELECT json_build_object(
      'verdict_id', v.id, 'debate_id', d.id, 'question_id', q.id,
      'experiment', e.name, 'experiment_id', e.id, 'experiment_version', ev.number, 'experiment_version_id', ev.id,
      'protocol_name', d.protocol_name, 'protocol_format', d.provenance->>'format', 'protocol_json', d.protocol::text,
      'code_version', COALESCE(d.provenance->>'code_version', ev.code_version),
      'debate_source', d.source, 'debate_external_id', d.external_id, 'debate_status', d.status,
      'answer_order', d.answer_order, 'last_seq', d.last_seq, 'debate_created_by', {created_by},
      'debate_created_at', d.created_at, 'debate_started_at', d.started_at, 'debate_ended_at', d.ended_at,
      'turn_deadline', d.turn_deadline, 'debate_provenance_json', d.provenance::text,
      'question', json_build_object(
        'kind', q.kind, 'title', q.title, 'text', q.text, 'answers', q.answers, 'correct_index', q.correct_index,
        'public_material', q.public_material,
        'hidden_material', CASE WHEN {hidden} THEN {PASSAGE_SQL} END,
        'hidden_image_json', CASE WHEN {hidden} THEN q.hidden_image::text END,
        'source', q.source, 'external_id', q.external_id, 'metadata_json', q.metadata::text,
        'created_at', q.created_at),
      'participants', COALESCE((
        SELECT json_agg(json_build_object(
          'seat', p.seat, 'participant', {participant}, 'answer_index', p.answer_index,
          'honest', p.answer_index = q.correct_index, 'alias', p.alias, 'agent_json', p.agent::text) ORDER BY p.id)
        FROM debates_participant p WHERE p.debate_id = d.id), '[]'),
      'turns', COALESCE((
        SELECT json_agg(json_build_object(
          'round', t.round_index, 'seat', t.seat, 'kind', t.kind, 'text', t.text, 'probabilities', t.probabilities,
          'end_debate', t.end_debate, 'quotes', {_quotes_sql("t.payload")},
          'payload_json', {_payload_sql("t.payload")},
          'private_note', CASE WHEN {hidden} THEN t.private_note END, 'client_id', t.client_id,
          'author', {author}, 'created_at', t.created_at) ORDER BY t.id)
        FROM debates_turn t WHERE t.debate_id = d.id), '[]'),
      'judge', {judge}, 'judge_kind', v.judge_kind, 'ai_judge', v.ai_judge, 'live', v.live,
      'probabilities', v.probabilities, 'chosen_index', v.chosen_index, 'correct', v.correct,
      'p_correct', (v.probabilities->>q.correct_index)::double precision,
      'reason', v.reason, 'seconds_spent', v.seconds_spent, 'hidden_seconds', v.hidden_seconds,
      'quality', {verdict_quality_sql("v", "d", "ev")}, 'after_turn', v.after_turn, 'after_seq', v.after_seq,
      'scoring_rule', v.scoring_rule, 'score', v.score, 'client_id', v.client_id,
      'verdict_provenance_json', v.provenance::text, 'verdict_created_at', v.created_at
    )::text
    {FROM_VERDICTS}
    WHERE {where}
    ORDER BY v.id{page}"""
    return sql, params


def _csv_bool(expression: str) -> str:
    """COPY writes booleans as t/f; the tables say true/false (empty for null)."""
    return f"CASE WHEN ({expression}) THEN 'true' WHEN NOT ({expression}) THEN 'false' END"


def csv_table_sql(table: str, options: ExportOptions) -> tuple[str, list]:
    params: list = []
    hidden = "TRUE" if options.include_hidden else "FALSE"
    names = _names_cte(options, params)

    def selected_debates() -> str:
        """The debates of the selected verdicts, as a subquery; its parameters follow the names'."""
        return f"SELECT DISTINCT v.debate_id {FROM_VERDICTS} WHERE {_where(options, params)}"

    if table == "debates":
        created_by = _identity("d.created_by_id", options)
        inner = selected_debates()
        return (
            f"""{names}SELECT d.id AS debate_id, q.id AS question_id, e.name AS experiment,
            ev.number AS experiment_version,
            d.protocol_name, d.provenance->>'format' AS protocol_format, d.status, d.source, d.external_id,
            d.answer_order::text AS answer_order, q.kind AS question_kind, q.title, q.text AS question,
            q.answers::text AS answers, q.correct_index, q.public_material,
            CASE WHEN {hidden} THEN {PASSAGE_SQL} END AS hidden_material,
            q.source AS question_source, q.external_id AS question_external_id,
            COALESCE(d.provenance->>'code_version', ev.code_version) AS code_version, {created_by} AS created_by,
            d.created_at, d.started_at, d.ended_at, d.protocol::text AS protocol_json,
            d.provenance::text AS provenance_json
            FROM debates_debate d JOIN debates_question q ON q.id = d.question_id
            LEFT JOIN debates_experimentversion ev ON ev.id = d.experiment_version_id
            LEFT JOIN debates_experiment e ON e.id = ev.experiment_id
            WHERE d.id IN ({inner}) ORDER BY d.id""",
            params,
        )
    if table == "participants":
        person = _identity("p.user_id", options)
        inner = selected_debates()
        return (
            f"""{names}SELECT p.debate_id, p.seat, {person} AS participant, p.answer_index,
            {_csv_bool("p.answer_index = q.correct_index")} AS honest,
            p.alias, {_csv_bool("p.agent IS NOT NULL")} AS ai, p.agent::text AS agent_json
            FROM debates_participant p JOIN debates_debate d ON d.id = p.debate_id
            JOIN debates_question q ON q.id = d.question_id
            WHERE p.debate_id IN ({inner}) ORDER BY p.debate_id, p.id""",
            params,
        )
    if table == "turns":
        author = _identity("t.author_id", options)
        inner = selected_debates()
        quotes_listed = _quotes_are_objects_sql("t.payload->'quotes'")
        return (
            f"""{names}SELECT t.debate_id,
            row_number() OVER (PARTITION BY t.debate_id ORDER BY t.id) - 1 AS turn_number,
            t.round_index AS round, t.seat, t.kind, t.text, t.probabilities::text AS probabilities,
            (t.probabilities->>q.correct_index)::double precision AS p_correct,
            {_csv_bool("t.end_debate")} AS end_debate,
            CASE WHEN {quotes_listed} THEN jsonb_array_length(t.payload->'quotes') ELSE 0 END AS quotes,
            CASE WHEN {quotes_listed} THEN (SELECT count(*) FROM jsonb_array_elements(t.payload->'quotes') x
             WHERE x->>'status' = 'verified') ELSE 0 END AS quotes_verified,
            t.payload::text AS payload_json, CASE WHEN {hidden} THEN t.private_note END AS private_note,
            {author} AS author, t.created_at
            FROM debates_turn t JOIN debates_debate d ON d.id = t.debate_id
            JOIN debates_question q ON q.id = d.question_id
            WHERE t.debate_id IN ({inner}) ORDER BY t.debate_id, t.id""",
            params,
        )
    if table == "judgments":
        judge = _identity("v.judge_id", options)
        where = _where(options, params)
        return (
            f"""{names}SELECT v.id AS verdict_id, v.debate_id, {judge} AS judge, v.judge_kind, v.ai_judge,
            {_csv_bool("v.live")} AS live,
            v.probabilities::text AS probabilities, (v.probabilities->>q.correct_index)::double precision AS p_correct,
            v.chosen_index, {_csv_bool("v.correct")} AS correct, v.reason, v.seconds_spent, v.hidden_seconds,
            quality->>'study_status' AS study_status, quality->>'study_outcome' AS study_outcome,
            quality->>'excluded' AS excluded, quality->>'gold_check' AS gold_check,
            (quality->>'gold_judged')::int AS gold_judged, (quality->>'gold_correct')::int AS gold_correct,
            v.after_turn, v.after_seq, v.scoring_rule, v.score,
            v.created_at, v.provenance::text AS provenance_json
            {FROM_VERDICTS} CROSS JOIN LATERAL (SELECT {verdict_quality_sql("v", "d", "ev")}::jsonb AS quality) vq
            WHERE {where} ORDER BY v.id""",
            params,
        )
    raise ExportError(f"unknown table {table!r}; the tables are {', '.join(CSV_TABLES)}")


def formula_safe_sql(sql: str, params: list) -> tuple[str, list]:
    """The query with every text column neutralised against spreadsheet formulas
    (judging.csv_safety): the columns and their types come from the query itself, so a column
    added later is covered too."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS t LIMIT 0", params)
        columns = [(c.name, c.type_code) for c in cursor.description]
    text_types = {25, 1043, 1042}  # text, varchar, char
    selected = ", ".join(
        f"{safe_cell_sql(_quoted(name))} AS {_quoted(name)}" if type_code in text_types else _quoted(name)
        for name, type_code in columns
    )
    return f"SELECT {selected} FROM ({sql}) AS t", params


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
