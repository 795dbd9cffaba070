"""Verdict datasets: JSONL (one record per verdict with its debate's full transcript), tidy CSV tables
and Parquet, with a datasheet.

PostgreSQL builds every record itself (json_build_object) and sends it through COPY ... TO STDOUT,
so an export costs little more than PostgreSQL's own COPY and runs in constant memory: Python
only passes each row on. On other databases (the embedded SQLite default) python_records builds
the same records more slowly; the CSV tables need PostgreSQL.

Identities: judges, debaters, turn authors and debate creators appear as pseudonyms, an
HMAC-SHA256 of their user id under a random key made for this export (and then forgotten), unless
the caller may and does ask for usernames. The same person has the same pseudonym throughout one
export and different pseudonyms in different exports. Hidden material (the passage, the image,
debaters' private notes) is left out unless asked for; its fields are then null.
"""
import hashlib
import hmac
import io
import itertools
import json
import secrets
import zipfile
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db import connection

from debates.models import Experiment, ExperimentVersion

from .csv_safety import safe_cell_sql
from .models import Verdict

JSONL_NAME = "verdicts.jsonl"
VERSIONS_NAME = "experiment_versions.jsonl"
DATASHEET_NAME = "DATASHEET.md"
PARQUET_NAME = "verdicts.parquet"
CSV_TABLES = ("debates", "participants", "turns", "judgments")
FORMATS = ("jsonl", "csv", "parquet")


class ExportError(Exception):
    """A request for an export that cannot be served (bad filter, wrong database)."""


# ---------------------------------------------------------------------------------------------
# The record's schema: one definition for the SQL, the Parquet schema and the datasheet.


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # int, float, bool, string, list<int>, list<float>, struct, list<struct>
    description: str
    children: tuple = ()
    optional: bool = False  # stored JSON leaves the key out when it has no value (exported as null)


EXTRA = "extra"
QUOTE_FIELDS = (
    Field("text", "string", "The quoted words as they appear in the speech (spans written out by the server)."),
    Field("status", "string", "Server check against the hidden passage: verified (exact after normalising case, "
                              "punctuation and white space), near (a few edits away) or unverified."),
    Field("start", "int", "First character of the matched stretch of the passage; null when not found."),
    Field("end", "int", "One past the last character of the matched stretch; null when not found."),
    Field("edits", "int", "Near matches: how many edits away; null otherwise.", optional=True),
    Field("tokens", "list<int>", "NYU debates: the quote's token span [first, one past last] in the dataset's "
                                 "tokenised story; null otherwise.", optional=True),
    Field("cut_from_tokens", "list<int>", "NYU debates: the token span the dataset gave when it ran past the end of "
                                          "the story (the quote was cut there); null otherwise.", optional=True),
    Field(EXTRA, "string", "Any other key stored with the quote (or a declared key whose value has another type), "
                           "as a JSON object; null when there is none. Nothing is dropped.", optional=True),
)

QUESTION_FIELDS = (
    Field("kind", "string", "text or image."),
    Field("title", "string", "Short title (for stories: the story's title)."),
    Field("text", "string", "The question put to the judge."),
    Field("answers", "list<string>", "The answer options in canonical order (all indices refer to this order)."),
    Field("correct_index", "int", "Index of the correct answer."),
    Field("public_material", "string", "What the judge could see besides the debate."),
    Field("hidden_material", "string", "The passage only debaters saw; null unless the export includes hidden "
                                       "material."),
    Field("hidden_image_json", "string", "Image debates: the 28x28 image as JSON; null unless hidden material is "
                                         "included."),
    Field("source", "string", "Dataset the question came from."),
    Field("external_id", "string", "The question's id in its source dataset."),
    Field("metadata_json", "string", "Further metadata from the source dataset, as JSON."),
    Field("created_at", "string", "When the question was stored (ISO 8601)."),
)

PARTICIPANT_FIELDS = (
    Field("seat", "string", "A, B (debaters), judge or observer."),
    Field("participant", "string", "The person in the seat: pseudonym or username; null for AI seats."),
    Field("answer_index", "int", "Debaters: the answer they argued for (canonical index); null otherwise."),
    Field("honest", "bool", "Debaters: whether they argued for the correct answer; null otherwise."),
    Field("alias", "string", "The name shown to others in the debate."),
    Field("agent_json", "string", "AI seats: back-end, model, parameters and prompts, as JSON; null for people."),
)

TURN_FIELDS = (
    Field("round", "int", "Index of the protocol round the turn belongs to (0-based)."),
    Field("seat", "string", "Who acted: a debater's seat or judge."),
    Field("kind", "string", "speech, feedback (a judge's report) or timeout."),
    Field("text", "string", "The speech or the judge's comment, as shown."),
    Field("probabilities", "list<float>", "Feedback turns: the judge's probability for each answer, canonical "
                                          "order; null otherwise."),
    Field("end_debate", "bool", "Feedback turns: whether the judge ended the debate with this report."),
    Field("quotes", "list<struct>", "Quotes from the hidden passage in this speech and their verification; null "
                                    "when the turn was not checked for quotes.", QUOTE_FIELDS),
    Field("payload_json", "string", "Everything else stored with the turn (e.g. AI generation details), as JSON; "
                                    "its quotes are in `quotes`."),
    Field("private_note", "string", "A debater's note to self; null unless hidden material is included."),
    Field("client_id", "string", "The id the client sent with the action (for idempotent retries)."),
    Field("author", "string", "Who submitted the turn: pseudonym or username; null for AI and timeouts."),
    Field("created_at", "string", "When the turn was stored (ISO 8601)."),
)

RECORD_FIELDS = (
    Field("verdict_id", "int", "The verdict's id in the exporting DebateLab."),
    Field("debate_id", "int", "The debate's id in the exporting DebateLab; records of one debate share it."),
    Field("question_id", "int", "The question's id in the exporting DebateLab."),
    Field("experiment", "string", "Name of the experiment the debate belongs to; null outside experiments."),
    Field("experiment_id", "int", "The experiment's id; null outside experiments."),
    Field("experiment_version", "int", "Version number of the frozen experiment definition (see "
                                       f"{VERSIONS_NAME} for the definitions)."),
    Field("experiment_version_id", "int", "The experiment version's id."),
    Field("protocol_name", "string", "Which of the experiment's protocols the debate followed."),
    Field("protocol_format", "string", "debate, consultancy, direct or interactive, when known."),
    Field("protocol_json", "string", "The frozen protocol (rounds, limits, scoring rule), as JSON."),
    Field("code_version", "string", "Version of the DebateLab code that ran the debate."),
    Field("debate_source", "string", "Imported debates: the dataset they came from."),
    Field("debate_external_id", "string", "Imported debates: their id in that dataset."),
    Field("debate_status", "string", "scheduled, live, awaiting_verdict, complete or abandoned."),
    Field("answer_order", "list<int>", "The order in which answers were shown (canonical indices)."),
    Field("last_seq", "int", "Number of the debate's last broadcast event."),
    Field("debate_created_by", "string", "Who created the debate: pseudonym or username."),
    Field("debate_created_at", "string", "When the debate was created (ISO 8601)."),
    Field("debate_started_at", "string", "When it started (ISO 8601)."),
    Field("debate_ended_at", "string", "When its last turn ended (ISO 8601)."),
    Field("turn_deadline", "string", "Deadline of the turn in progress, if any (ISO 8601)."),
    Field("debate_provenance_json", "string", "What produced the debate: experiment version, protocol, "
                                              "counterbalancing seed, honest seats, debater and judge set-up, prompts, "
                                              "models, code version, importer; as JSON."),
    Field("question", "struct", "The question debated.", QUESTION_FIELDS),
    Field("participants", "list<struct>", "Everyone seated in the debate.", PARTICIPANT_FIELDS),
    Field("turns", "list<struct>", "The full transcript in order: speeches, every probability report of the "
                                   "judge, timeouts.", TURN_FIELDS),
    Field("judge", "string", "The judge who gave this verdict: pseudonym or username; null for AI judges."),
    Field("judge_kind", "string", "human or ai."),
    Field("ai_judge", "string", "AI judges: the model and its parameters."),
    Field("live", "bool", "True for the debate's live judge, false for a judgment made later from the transcript."),
    Field("probabilities", "list<float>", "The verdict: one probability per answer, canonical order, summing to 1."),
    Field("chosen_index", "int", "The answer the verdict favoured."),
    Field("correct", "bool", "Whether the favoured answer is the correct one."),
    Field("p_correct", "float", "The probability the verdict put on the correct answer."),
    Field("reason", "string", "The judge's written reason."),
    Field("seconds_spent", "float", "Time the judge spent on the verdict, when measured."),
    Field("after_turn", "int", "How many turns the debate had when the verdict was given."),
    Field("after_seq", "int", "The last debate event the judge had seen."),
    Field("scoring_rule", "string", "The proper scoring rule the judge was scored under (log, quadratic, "
                                    "spherical)."),
    Field("score", "float", "The verdict's score under that rule (higher is better), less any per-turn penalty."),
    Field("client_id", "string", "The id the judge's client sent with the verdict."),
    Field("verdict_provenance_json", "string", "What produced the verdict (AI judges: model, prompt, seed; "
                                               "imports: source), as JSON."),
    Field("verdict_created_at", "string", "When the verdict was stored (ISO 8601)."),
)


def record_json_schema() -> dict:
    """The JSON Schema (draft 2020-12) every exported JSONL record satisfies: every declared key
    present, nothing undeclared, each value of its declared type or null."""
    types = {"int": "integer", "float": "number", "bool": "boolean", "string": "string"}

    def schema_of(f: Field) -> dict:
        if f.kind in types:
            schema = {"type": [types[f.kind], "null"]}
        elif f.kind.startswith("list<") and f.kind[5:-1] in types:
            schema = {"type": ["array", "null"], "items": {"type": types[f.kind[5:-1]]}}
        else:
            schema = object_schema(f.children)
            schema["type"] = ["object", "null"]
            if f.kind == "list<struct>":
                schema = {"type": ["array", "null"], "items": dict(schema, type="object")}
        return dict(schema, description=f.description)

    def object_schema(fields) -> dict:
        return {"type": "object", "properties": {f.name: schema_of(f) for f in fields},
                "required": [f.name for f in fields], "additionalProperties": False}

    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "DebateLab verdict record",
            **object_schema(RECORD_FIELDS)}


def declared(stored: dict, fields) -> dict:
    """A stored JSON object as its declared fields: every declared key (null when absent), values of
    another type and undeclared keys moved into `extra` (a JSON object as text). The Python twin
    of _declared_sql."""
    out, extra = {}, {}
    for f in fields:
        if f.name == EXTRA:
            continue
        value = stored.get(f.name)
        if value is None or _conforms(value, f.kind):
            out[f.name] = int(value) if f.kind == "int" and value is not None else (
                [int(v) for v in value] if f.kind == "list<int>" and value is not None else value)
        else:
            out[f.name], extra[f.name] = None, value
    names = {f.name for f in fields}
    extra.update({k: v for k, v in stored.items() if k not in names or k == EXTRA})
    out[EXTRA] = json.dumps(_jsonb_order(extra), ensure_ascii=False) if extra else None
    return out


def _jsonb_order(value):
    """Objects with their keys in PostgreSQL's jsonb order (shorter first, then bytewise), so both
    export paths write `extra` alike."""
    if isinstance(value, dict):
        return {k: _jsonb_order(value[k]) for k in sorted(value, key=lambda k: (len(k.encode()), k.encode()))}
    if isinstance(value, list):
        return [_jsonb_order(v) for v in value]
    return value


def undeclared(exported: dict, fields) -> dict:
    """The stored JSON object back from its exported form (the inverse of `declared`): optional
    keys without a value left out again, `extra` merged back."""
    names = {f.name for f in fields}
    stored = {f.name: exported.get(f.name) for f in fields
              if f.name != EXTRA and not (f.optional and exported.get(f.name) is None)}
    stored.update({k: v for k, v in exported.items() if k not in names})  # exports made before `extra`
    if exported.get(EXTRA):
        stored.update(json.loads(exported[EXTRA]))
    return stored


def _conforms(value, kind: str) -> bool:
    def integral(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and abs(v) < 9e18

    checks = {"int": integral, "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool), "string": lambda v: isinstance(v, str)}
    if kind.startswith("list<"):
        return isinstance(value, list) and all(checks[kind[5:-1]](v) for v in value)
    return checks[kind](value)


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
        return (f"CASE WHEN jsonb_typeof({v}) = 'array' THEN NOT EXISTS (SELECT 1 FROM jsonb_array_elements({v}) el "
                f"WHERE NOT ({element('el', kind[5:-1])})) ELSE FALSE END")
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
            value = (f"(SELECT COALESCE(jsonb_agg(to_jsonb((el #>> '{{}}')::numeric::bigint) ORDER BY n), '[]') "
                     f"FROM jsonb_array_elements({v}) WITH ORDINALITY AS els(el, n))")
        else:
            value = v
        parts.append(f"'{f.name}', CASE WHEN {conforms} THEN {value} END")
        kept.append(f"CASE WHEN {v} IS NULL OR jsonb_typeof({v}) = 'null' OR {conforms} THEN '{f.name}' END")
    others = f"({x} - array_remove(ARRAY[{', '.join(kept)}]::text[], NULL))"
    parts.append(f"'{EXTRA}', NULLIF({others}, '{{}}'::jsonb)::text")
    return f"json_build_object({', '.join(parts)})"


def _quotes_are_objects_sql(quotes: str) -> str:
    return (f"(jsonb_typeof({quotes}) = 'array' AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements({quotes}) qo "
            f"WHERE jsonb_typeof(qo) <> 'object'))")


def _quotes_sql(payload: str) -> str:
    """A turn's quotes as declared structs, in order; null when the turn has no list of quote objects
    (its payload_json then keeps whatever `quotes` holds)."""
    quotes = f"{payload} -> 'quotes'"
    return (f"CASE WHEN {_quotes_are_objects_sql(quotes)} THEN COALESCE((SELECT json_agg("
            f"{_declared_sql('qx', QUOTE_FIELDS)} ORDER BY qn) FROM jsonb_array_elements({quotes}) "
            f"WITH ORDINALITY AS qs(qx, qn)), '[]') END")


def _payload_sql(payload: str) -> str:
    declared_quotes = _quotes_are_objects_sql(f"{payload} -> 'quotes'")
    return f"(CASE WHEN {declared_quotes} THEN {payload} - 'quotes' ELSE {payload} END)::text"


def quotes_of(payload: dict | None) -> tuple[list | None, dict]:
    """(the declared quotes, the rest of the payload) of a stored turn payload; quotes is None
    when the payload has no list of quote objects (the payload then keeps its `quotes`)."""
    payload = payload or {}
    quotes = payload.get("quotes")
    if not (isinstance(quotes, list) and all(isinstance(q, dict) for q in quotes)):
        return None, payload
    return [declared(q, QUOTE_FIELDS) for q in quotes], {k: v for k, v in payload.items() if k != "quotes"}


def arrow_schema():
    import pyarrow as pa

    def arrow_type(f: Field):
        simple = {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "string": pa.string(),
                  "list<int>": pa.list_(pa.int64()), "list<float>": pa.list_(pa.float64()),
                  "list<string>": pa.list_(pa.string())}
        if f.kind in simple:
            return simple[f.kind]
        struct = pa.struct([pa.field(c.name, arrow_type(c)) for c in f.children])
        return struct if f.kind == "struct" else pa.list_(struct)

    return pa.schema([pa.field(f.name, arrow_type(f)) for f in RECORD_FIELDS])


# ---------------------------------------------------------------------------------------------
# What to export


@dataclass
class ExportOptions:
    experiment_ids: list[int] | None = None  # None: every verdict the caller may export
    version_number: int | None = None
    source: str | None = None
    protocol_name: str | None = None
    judge_kind: str | None = None
    include_hidden: bool = False
    identities: bool = False  # usernames instead of pseudonyms
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    licence: str = "CC-BY-4.0"

    def filters_applied(self) -> list[str]:
        described = []
        if self.experiment_ids is not None:
            described.append(f"experiments: {', '.join(map(str, self.experiment_ids)) or 'none'}")
        for label, value in (("experiment version", self.version_number), ("debate source", self.source),
                             ("protocol", self.protocol_name), ("judge kind", self.judge_kind)):
            if value is not None:
                described.append(f"{label}: {value}")
        return described or ["none (every verdict)"]


def check_postgresql() -> None:
    if connection.vendor != "postgresql":
        raise ExportError("the CSV tables need PostgreSQL (set DATABASE_URL); this DebateLab runs on "
                          f"{connection.vendor}")


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


def pseudonym(user_id: int, key: bytes) -> str:
    """The pseudonym an export with this key gives a user id (HMAC-SHA256, first 16 hex digits)."""
    key = key if len(key) <= 64 else hashlib.sha256(key).digest()
    return "u-" + hmac.new(key, str(user_id).encode(), hashlib.sha256).hexdigest()[:16]


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
          'end_debate', t.end_debate, 'quotes', {_quotes_sql('t.payload')},
          'payload_json', {_payload_sql('t.payload')},
          'private_note', CASE WHEN {hidden} THEN t.private_note END, 'client_id', t.client_id,
          'author', {author}, 'created_at', t.created_at) ORDER BY t.id)
        FROM debates_turn t WHERE t.debate_id = d.id), '[]'),
      'judge', {judge}, 'judge_kind', v.judge_kind, 'ai_judge', v.ai_judge, 'live', v.live,
      'probabilities', v.probabilities, 'chosen_index', v.chosen_index, 'correct', v.correct,
      'p_correct', (v.probabilities->>q.correct_index)::double precision,
      'reason', v.reason, 'seconds_spent', v.seconds_spent, 'after_turn', v.after_turn, 'after_seq', v.after_seq,
      'scoring_rule', v.scoring_rule, 'score', v.score, 'client_id', v.client_id,
      'verdict_provenance_json', v.provenance::text, 'verdict_created_at', v.created_at
    )::text
    {FROM_VERDICTS}
    WHERE {where}
    ORDER BY v.id{page}"""
    return sql, params


def _copy_lines(sql: str, params: list):
    """Rows of a one-column COPY in text format, as bytes ending in a newline. COPY's text format
    doubles backslashes; JSON text holds no raw control characters, so undoing that is all."""
    check_postgresql()
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
            for row in copy:
                yield bytes(row).replace(b"\\\\", b"\\")


def jsonl_lines(options: ExportOptions):
    """The JSONL export, one record (bytes, newline-terminated) per verdict, streamed from the database."""
    if connection.vendor != "postgresql":
        for record in python_records(options):
            yield (json.dumps(record, ensure_ascii=False) + "\n").encode()
        return
    sql, params = record_sql(options)
    yield from _copy_lines(sql, params)


def records(options: ExportOptions, after_id: int | None = None, limit: int | None = None) -> list[dict]:
    """A page of records as dicts (for the JSON API)."""
    if connection.vendor != "postgresql":
        return list(python_records(options, after_id, limit))
    sql, params = record_sql(options, after_id, limit)
    return [json.loads(line) for line in _copy_lines(sql, params)]


def python_records(options: ExportOptions, after_id: int | None = None, limit: int | None = None, chunk: int = 500):
    """The same records built in Python, for databases other than PostgreSQL (the embedded SQLite
    default). Slower, and still in constant memory: verdicts are read `chunk` at a time."""
    from debates.models import Participant, Turn

    User = get_user_model()
    usernames = {}

    def person(user_id):
        if user_id is None:
            return None
        if not options.identities:
            return pseudonym(user_id, options.key)
        if user_id not in usernames:
            usernames[user_id] = User.objects.filter(pk=user_id).values_list("username", flat=True).first()
        return usernames[user_id]

    def when(value):
        return value.isoformat() if value else None

    def text(value):
        return None if value is None else json.dumps(value, ensure_ascii=False)

    ids = verdict_queryset(options).order_by("id").values_list("id", flat=True)
    if after_id is not None:
        ids = ids.filter(id__gt=after_id)
    ids = list(ids[:limit]) if limit is not None else ids.iterator(chunk_size=chunk)
    batch = []
    for verdict_id in itertools.chain(ids, [None]):
        if verdict_id is not None:
            batch.append(verdict_id)
            if len(batch) < chunk:
                continue
        if not batch:
            break
        verdicts = list(Verdict.objects.filter(id__in=batch).order_by("id")
                        .select_related("debate__question", "debate__experiment_version__experiment"))
        debate_ids = {v.debate_id for v in verdicts}
        seats, turns = {}, {}
        for p in Participant.objects.filter(debate_id__in=debate_ids).order_by("id"):
            seats.setdefault(p.debate_id, []).append(p)
        for t in Turn.objects.filter(debate_id__in=debate_ids).order_by("id"):
            turns.setdefault(t.debate_id, []).append(t)
        for v in verdicts:
            d, q = v.debate, v.debate.question
            version = d.experiment_version
            yield {
                "verdict_id": v.pk, "debate_id": d.pk, "question_id": q.pk,
                "experiment": version.experiment.name if version else None,
                "experiment_id": version.experiment_id if version else None,
                "experiment_version": version.number if version else None,
                "experiment_version_id": version.pk if version else None,
                "protocol_name": d.protocol_name, "protocol_format": (d.provenance or {}).get("format"),
                "protocol_json": text(d.protocol),
                "code_version": (d.provenance or {}).get("code_version") or (version.code_version if version else None),
                "debate_source": d.source, "debate_external_id": d.external_id, "debate_status": d.status,
                "answer_order": d.answer_order, "last_seq": d.last_seq, "debate_created_by": person(d.created_by_id),
                "debate_created_at": when(d.created_at), "debate_started_at": when(d.started_at),
                "debate_ended_at": when(d.ended_at), "turn_deadline": when(d.turn_deadline),
                "debate_provenance_json": text(d.provenance),
                "question": {
                    "kind": q.kind, "title": q.title, "text": q.text, "answers": q.answers,
                    "correct_index": q.correct_index, "public_material": q.public_material,
                    "hidden_material": q.passage if options.include_hidden else None,
                    "hidden_image_json": text(q.hidden_image) if options.include_hidden else None,
                    "source": q.source, "external_id": q.external_id, "metadata_json": text(q.metadata),
                    "created_at": when(q.created_at)},
                "participants": [{
                    "seat": p.seat, "participant": person(p.user_id), "answer_index": p.answer_index,
                    "honest": None if p.answer_index is None else p.answer_index == q.correct_index,
                    "alias": p.alias, "agent_json": text(p.agent)} for p in seats.get(d.pk, [])],
                "turns": [{
                    "round": t.round_index, "seat": t.seat, "kind": t.kind, "text": t.text,
                    "probabilities": t.probabilities, "end_debate": t.end_debate,
                    "quotes": quotes_of(t.payload)[0], "payload_json": text(quotes_of(t.payload)[1]),
                    "private_note": t.private_note if options.include_hidden else None, "client_id": t.client_id,
                    "author": person(t.author_id), "created_at": when(t.created_at)} for t in turns.get(d.pk, [])],
                "judge": person(v.judge_id), "judge_kind": v.judge_kind, "ai_judge": v.ai_judge, "live": v.live,
                "probabilities": v.probabilities, "chosen_index": v.chosen_index, "correct": v.correct,
                "p_correct": float(v.probabilities[q.correct_index]), "reason": v.reason,
                "seconds_spent": v.seconds_spent, "after_turn": v.after_turn, "after_seq": v.after_seq,
                "scoring_rule": v.scoring_rule, "score": v.score, "client_id": v.client_id,
                "verdict_provenance_json": text(v.provenance), "verdict_created_at": when(v.created_at),
            }
        batch = []


def chunked(lines, size: int = 256 * 1024):
    """Join small byte strings into chunks of about `size` bytes, for fewer, larger writes."""
    buffer, length = [], 0
    for line in lines:
        buffer.append(line)
        length += len(line)
        if length >= size:
            yield b"".join(buffer)
            buffer, length = [], 0
    if buffer:
        yield b"".join(buffer)


# ---------------------------------------------------------------------------------------------
# Experiment versions (the definitions behind experiment_version_id)


def versions_of(options: ExportOptions):
    """The experiment versions behind the selected verdicts."""
    return ExperimentVersion.objects.filter(pk__in=verdict_queryset(options).values("debate__experiment_version_id"))


def version_lines(options: ExportOptions):
    for version in versions_of(options).select_related("experiment").order_by("id"):
        definition, source_text = version.definition, version.source_text
        if not options.identities:
            definition, source_text = pseudonymised_definition(definition, options.key), None
        yield (json.dumps({
            "experiment_version_id": version.pk, "experiment_id": version.experiment_id,
            "experiment": version.experiment.name, "number": version.number, "definition": definition,
            "source_text": source_text, "source_name": version.source_name,
            "frozen_at": version.frozen_at.isoformat() if version.frozen_at else None,
            "code_version": version.code_version,
            "created_at": version.created_at.isoformat(),
            "experiment_created_at": version.experiment.created_at.isoformat(),
        }) + "\n").encode()


def pseudonymised_definition(definition: dict, key: bytes) -> dict:
    """An experiment definition as a pseudonymised export shows it: the judge and debater pools
    name people, so their usernames become the same pseudonyms as in the records. (The file as
    written, source_text, names them too: it is left out.)"""
    definition = json.loads(json.dumps(definition or {}))
    pools = [section for section in (definition.get("debaters"), definition.get("judges"))
             if isinstance(section, dict) and isinstance(section.get("pool"), list)]
    names = {name for section in pools for name in section["pool"]}
    ids = dict(get_user_model().objects.filter(username__in=names).values_list("username", "id"))
    for section in pools:
        section["pool"] = [pseudonym(ids[name], key) if name in ids else "unknown" for name in section["pool"]]
    return definition


def verdict_queryset(options: ExportOptions):
    """The same selection as the SQL, for counts and the datasheet."""
    verdicts = Verdict.objects.all()
    if options.experiment_ids is not None:
        verdicts = verdicts.filter(debate__experiment_version__experiment_id__in=options.experiment_ids)
    if options.version_number is not None:
        verdicts = verdicts.filter(debate__experiment_version__number=options.version_number)
    if options.source is not None:
        verdicts = verdicts.filter(debate__source=options.source)
    if options.protocol_name is not None:
        verdicts = verdicts.filter(debate__protocol_name=options.protocol_name)
    if options.judge_kind is not None:
        verdicts = verdicts.filter(judge_kind=options.judge_kind)
    return verdicts


# ---------------------------------------------------------------------------------------------
# Tidy CSV tables


def _csv_bool(expression: str) -> str:
    """COPY writes booleans as t/f; the tables say true/false (empty for null)."""
    return f"CASE WHEN ({expression}) THEN 'true' WHEN NOT ({expression}) THEN 'false' END"


def csv_table_sql(table: str, options: ExportOptions) -> tuple[str, list]:
    params: list = []
    hidden = "TRUE" if options.include_hidden else "FALSE"
    selected = "SELECT DISTINCT v.debate_id {from_} WHERE {where}"
    names = _names_cte(options, params)
    if table == "debates":
        created_by = _identity("d.created_by_id", options)
        inner_params: list = []
        inner = selected.format(from_=FROM_VERDICTS, where=_where(options, inner_params))
        params += inner_params
        return f"""{names}SELECT d.id AS debate_id, q.id AS question_id, e.name AS experiment, ev.number AS experiment_version,
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
            WHERE d.id IN ({inner}) ORDER BY d.id""", params
    if table == "participants":
        person = _identity("p.user_id", options)
        inner_params = []
        inner = selected.format(from_=FROM_VERDICTS, where=_where(options, inner_params))
        params += inner_params
        return f"""{names}SELECT p.debate_id, p.seat, {person} AS participant, p.answer_index,
            {_csv_bool("p.answer_index = q.correct_index")} AS honest,
            p.alias, {_csv_bool("p.agent IS NOT NULL")} AS ai, p.agent::text AS agent_json
            FROM debates_participant p JOIN debates_debate d ON d.id = p.debate_id
            JOIN debates_question q ON q.id = d.question_id
            WHERE p.debate_id IN ({inner}) ORDER BY p.debate_id, p.id""", params
    if table == "turns":
        author = _identity("t.author_id", options)
        inner_params = []
        inner = selected.format(from_=FROM_VERDICTS, where=_where(options, inner_params))
        params += inner_params
        quotes_listed = _quotes_are_objects_sql("t.payload->'quotes'")
        return f"""{names}SELECT t.debate_id, row_number() OVER (PARTITION BY t.debate_id ORDER BY t.id) - 1 AS turn_number,
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
            WHERE t.debate_id IN ({inner}) ORDER BY t.debate_id, t.id""", params
    if table == "judgments":
        judge = _identity("v.judge_id", options)
        where = _where(options, params)
        return f"""{names}SELECT v.id AS verdict_id, v.debate_id, {judge} AS judge, v.judge_kind, v.ai_judge,
            {_csv_bool("v.live")} AS live,
            v.probabilities::text AS probabilities, (v.probabilities->>q.correct_index)::double precision AS p_correct,
            v.chosen_index, {_csv_bool("v.correct")} AS correct, v.reason, v.seconds_spent, v.after_turn, v.after_seq, v.scoring_rule, v.score,
            v.created_at, v.provenance::text AS provenance_json
            {FROM_VERDICTS} WHERE {where} ORDER BY v.id""", params
    raise ExportError(f"unknown table {table!r}; the tables are {', '.join(CSV_TABLES)}")


def csv_lines(table: str, options: ExportOptions):
    check_postgresql()
    sql, params = formula_safe_sql(*csv_table_sql(table, options))
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", params) as copy:
            for row in copy:
                yield bytes(row)


def formula_safe_sql(sql: str, params: list) -> tuple[str, list]:
    """The query with every text column neutralised against spreadsheet formulas
    (judging.csv_safety): the columns and their types come from the query itself, so a column
    added later is covered too."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM ({sql}) AS t LIMIT 0", params)
        columns = [(c.name, c.type_code) for c in cursor.description]
    text_types = {25, 1043, 1042}  # text, varchar, char
    selected = ", ".join(
        f'{safe_cell_sql(_quoted(name))} AS {_quoted(name)}' if type_code in text_types else _quoted(name)
        for name, type_code in columns)
    return f"SELECT {selected} FROM ({sql}) AS t", params


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# ---------------------------------------------------------------------------------------------
# Parquet


def parquet_batches(options: ExportOptions, rows_per_group: int = 20_000):
    """Arrow tables of up to rows_per_group records, parsed by Arrow's JSON reader with the fixed schema."""
    import pyarrow.json as pajson

    schema = arrow_schema()
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error")
    batch, count = [], 0
    for line in jsonl_lines(options):
        batch.append(line)
        count += 1
        if count == rows_per_group:
            yield pajson.read_json(io.BytesIO(b"".join(batch)), parse_options=parse)
            batch, count = [], 0
    if batch:
        yield pajson.read_json(io.BytesIO(b"".join(batch)), parse_options=parse)


def write_parquet(options: ExportOptions, sink, on_rows=None) -> int:
    import pyarrow.parquet as pq

    rows = 0
    with pq.ParquetWriter(sink, arrow_schema(), compression="zstd") as writer:
        for table in parquet_batches(options):
            writer.write_table(table)
            rows += table.num_rows
            if on_rows:
                on_rows(table.num_rows)
    return rows


# ---------------------------------------------------------------------------------------------
# Streaming several files as one zip


class _Pipe(io.RawIOBase):
    """A write-only stream whose written bytes are taken out as they come (for streaming a zip)."""

    def __init__(self):
        self.parts = []
        self.position = 0

    def writable(self):
        return True

    def write(self, data):
        self.parts.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self):
        return self.position

    def take(self) -> bytes:
        data, self.parts = b"".join(self.parts), []
        return data


def zip_stream(files):
    """files: (name, iterable of bytes) pairs -> the bytes of a zip archive holding them, produced
    as the iterables are consumed (constant memory)."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=3) as archive:
        for name, chunks in files:
            with archive.open(name, "w", force_zip64=True) as member:
                for chunk in chunks:
                    member.write(chunk)
                    data = pipe.take()
                    if len(data) > 0:
                        yield data
            yield pipe.take()
    yield pipe.take()


def bundle(fmt: str, options: ExportOptions):
    """The (file name, chunks) pairs of an export in a format, datasheet included."""
    from .datasheet import datasheet

    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "csv":
        check_postgresql()
    files = [(DATASHEET_NAME, [datasheet(options, fmt).encode()]), (VERSIONS_NAME, version_lines(options))]
    if fmt == "jsonl":
        files.append((JSONL_NAME, chunked(jsonl_lines(options))))
    elif fmt == "csv":
        files += [(f"{table}.csv", chunked(csv_lines(table, options))) for table in CSV_TABLES]
    else:
        files.append((PARQUET_NAME, _parquet_chunks(options)))
    return files


def _parquet_chunks(options: ExportOptions):
    import pyarrow.parquet as pq

    pipe = _Pipe()
    with pq.ParquetWriter(pipe, arrow_schema(), compression="zstd") as writer:
        for table in parquet_batches(options):
            writer.write_table(table)
            yield pipe.take()
    yield pipe.take()


def experiments_of(user):
    """The experiments a user may export: their own and those shared with them, or all for a superuser."""
    return Experiment.visible_to(user)
