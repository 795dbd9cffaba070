"""The record's schema: one definition (Field) for the SQL, the Parquet schema, the JSON Schema and
the datasheet, and the Python twins of the SQL that fit stored JSON to it (declared, undeclared)."""

import json
from dataclasses import dataclass

from .options import VERSIONS_NAME


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
    Field(
        "status",
        "string",
        "Server check against the hidden passage: verified (exact after normalising case, "
        "punctuation and white space), near (a few edits away) or unverified.",
    ),
    Field("start", "int", "First character of the matched stretch of the passage; null when not found."),
    Field("end", "int", "One past the last character of the matched stretch; null when not found."),
    Field("edits", "int", "Near matches: how many edits away; null otherwise.", optional=True),
    Field(
        "tokens",
        "list<int>",
        "NYU debates: the quote's token span [first, one past last] in the dataset's tokenised story; null otherwise.",
        optional=True,
    ),
    Field(
        "cut_from_tokens",
        "list<int>",
        "NYU debates: the token span the dataset gave when it ran past the end of "
        "the story (the quote was cut there); null otherwise.",
        optional=True,
    ),
    Field(
        EXTRA,
        "string",
        "Any other key stored with the quote (or a declared key whose value has another type), "
        "as a JSON object; null when there is none. Nothing is dropped.",
        optional=True,
    ),
)

QUESTION_FIELDS = (
    Field("kind", "string", "text or image."),
    Field("title", "string", "Short title (for stories: the story's title)."),
    Field("text", "string", "The question put to the judge."),
    Field("answers", "list<string>", "The answer options in canonical order (all indices refer to this order)."),
    Field("correct_index", "int", "Index of the correct answer."),
    Field("public_material", "string", "What the judge could see besides the debate."),
    Field(
        "hidden_material", "string", "The passage only debaters saw; null unless the export includes hidden material."
    ),
    Field(
        "hidden_image_json",
        "string",
        "Image debates: the 28x28 image as JSON; null unless hidden material is included.",
    ),
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
    Field(
        "probabilities",
        "list<float>",
        "Feedback turns: the judge's probability for each answer, canonical order; null otherwise.",
    ),
    Field("end_debate", "bool", "Feedback turns: whether the judge ended the debate with this report."),
    Field(
        "quotes",
        "list<struct>",
        "Quotes from the hidden passage in this speech and their verification; null "
        "when the turn was not checked for quotes.",
        QUOTE_FIELDS,
    ),
    Field(
        "payload_json",
        "string",
        "Everything else stored with the turn (e.g. AI generation details), as JSON; its quotes are in `quotes`.",
    ),
    Field("private_note", "string", "A debater's note to self; null unless hidden material is included."),
    Field("client_id", "string", "The id the client sent with the action (for idempotent retries)."),
    Field("author", "string", "Who submitted the turn: pseudonym or username; null for AI and timeouts."),
    Field("created_at", "string", "When the turn was stored (ISO 8601)."),
)

QUALITY_FIELDS = (
    Field(
        "study_status",
        "string",
        "The judge's status in the crowd study: allocated, consented, qualified, "
        "waiting, judging, completed, returned, timed_out or screened_out.",
    ),
    Field(
        "study_outcome",
        "string",
        "How their study ended (the completion code's key: completed, "
        "failed_checks, timed_out, ...); null while it goes on.",
    ),
    Field(
        "excluded",
        "bool",
        "Whether the study's exclusion rules screened the judge out (failed practice, "
        "gold accuracy, hidden time, or an earlier ban).",
    ),
    Field(
        "gold_check",
        "bool",
        "Whether this verdict was on one of the study's gold debates (an attention "
        "check with a known answer, not part of the work).",
    ),
    Field("gold_judged", "int", "How many gold debates the judge judged in the study."),
    Field("gold_correct", "int", "How many of those they got right."),
    Field("practice_correct", "bool", "Whether the judge's practice debate was right; null without one."),
    Field("quiz_attempts", "int", "How many tries the instructions' quiz took."),
)

RECORD_FIELDS = (
    Field("verdict_id", "int", "The verdict's id in the exporting DebateLab."),
    Field("debate_id", "int", "The debate's id in the exporting DebateLab; records of one debate share it."),
    Field("question_id", "int", "The question's id in the exporting DebateLab."),
    Field("experiment", "string", "Name of the experiment the debate belongs to; null outside experiments."),
    Field("experiment_id", "int", "The experiment's id; null outside experiments."),
    Field(
        "experiment_version",
        "int",
        f"Version number of the frozen experiment definition (see {VERSIONS_NAME} for the definitions).",
    ),
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
    Field(
        "debate_provenance_json",
        "string",
        "What produced the debate: experiment version, protocol, "
        "counterbalancing seed, honest seats, debater and judge set-up, prompts, "
        "models, code version, importer; as JSON.",
    ),
    Field("question", "struct", "The question debated.", QUESTION_FIELDS),
    Field("participants", "list<struct>", "Everyone seated in the debate.", PARTICIPANT_FIELDS),
    Field(
        "turns",
        "list<struct>",
        "The full transcript in order: speeches, every probability report of the judge, timeouts.",
        TURN_FIELDS,
    ),
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
    Field(
        "hidden_seconds",
        "float",
        "Seconds the judge's page was hidden (another tab or window) during the "
        "debate, as their browser reported it; null when not reported.",
    ),
    Field(
        "quality",
        "struct",
        "Crowd studies: the judge's quality checks in the study (judging.quality); null for judges outside a study.",
        QUALITY_FIELDS,
    ),
    Field("after_turn", "int", "How many turns the debate had when the verdict was given."),
    Field("after_seq", "int", "The last debate event the judge had seen."),
    Field("scoring_rule", "string", "The proper scoring rule the judge was scored under (log, quadratic, spherical)."),
    Field("score", "float", "The verdict's score under that rule (higher is better), less any per-turn penalty."),
    Field("client_id", "string", "The id the judge's client sent with the verdict."),
    Field(
        "verdict_provenance_json",
        "string",
        "What produced the verdict (AI judges: model, prompt, seed; imports: source), as JSON.",
    ),
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
        return {
            "type": "object",
            "properties": {f.name: schema_of(f) for f in fields},
            "required": [f.name for f in fields],
            "additionalProperties": False,
        }

    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "DebateLab verdict record",
        **object_schema(RECORD_FIELDS),
    }


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
            out[f.name] = (
                int(value)
                if f.kind == "int" and value is not None
                else ([int(v) for v in value] if f.kind == "list<int>" and value is not None else value)
            )
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
    stored = {
        f.name: exported.get(f.name)
        for f in fields
        if f.name != EXTRA and not (f.optional and exported.get(f.name) is None)
    }
    stored.update({k: v for k, v in exported.items() if k not in names})  # exports made before `extra`
    if exported.get(EXTRA):
        stored.update(json.loads(exported[EXTRA]))
    return stored


def _conforms(value, kind: str) -> bool:
    def integral(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and float(v).is_integer() and abs(v) < 9e18

    checks = {
        "int": integral,
        "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "bool": lambda v: isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
    }
    if kind.startswith("list<"):
        return isinstance(value, list) and all(checks[kind[5:-1]](v) for v in value)
    return checks[kind](value)


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
        simple = {
            "int": pa.int64(),
            "float": pa.float64(),
            "bool": pa.bool_(),
            "string": pa.string(),
            "list<int>": pa.list_(pa.int64()),
            "list<float>": pa.list_(pa.float64()),
            "list<string>": pa.list_(pa.string()),
        }
        if f.kind in simple:
            return simple[f.kind]
        struct = pa.struct([pa.field(c.name, arrow_type(c)) for c in f.children])
        return struct if f.kind == "struct" else pa.list_(struct)

    return pa.schema([pa.field(f.name, arrow_type(f)) for f in RECORD_FIELDS])
