"""Importing an export back: the records of judging.export become questions, experiments, debates
with their seats and turns, and verdicts again, with every stored field as it was exported.

The whole import is one transaction: a file with any bad line, or a debate that is already here,
is refused with the line number and nothing is imported. People appear under the name the export
gave them (username or pseudonym), as accounts without a usable password. Exports hold no event
log, so imported debates have turns and verdicts but no DebateEvent rows. Verdicts keep their
exported chosen answer, correctness and score under the tie rule they were recorded with.
"""

import json
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction

from debates.importers.json_lines import json_lines
from debates.models import Debate, Experiment, ExperimentVersion, Participant, Question, Turn

from . import export, quality, verdicts
from .imported_accounts import imported_account

REQUIRED = (
    "verdict_id",
    "debate_id",
    "question_id",
    "question",
    "participants",
    "turns",
    "probabilities",
    "chosen_index",
    "correct",
    "judge_kind",
    "score",
)


class ImportRefused(Exception):
    pass


@dataclass
class ImportSummary:
    verdicts: int = 0
    debates: int = 0
    questions: int = 0
    users: int = 0
    experiment_versions: int = 0


def parse_lines(lines, what: str = "record") -> list[dict]:
    records = []
    for number, record, problem in json_lines(lines):
        if problem:
            raise ImportRefused(f"line {number}: {problem}")
        if not isinstance(record, dict):
            raise ImportRefused(f"line {number}: a {what} must be a JSON object")
        record["_line"] = number
        records.append(record)
    return records


def _when(value, line, name):
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        raise ImportRefused(f"line {line}: {name} is not an ISO 8601 time: {value!r}") from None


def _json(text, line, name, default=None):
    if text is None:
        return default
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError):
        raise ImportRefused(f"line {line}: {name} must hold JSON text") from None


class _Importer:
    def __init__(self, owner, versions: dict):
        self.owner = owner
        self.version_definitions = versions
        self.users, self.questions, self.versions, self.debates = {}, {}, {}, {}
        self.summary = ImportSummary()
        self.timestamps = []  # (object, created_at): auto_now_add fields are set back after saving

    def user(self, name):
        if name is None:
            return None
        if name not in self.users:
            # An export's own pseudonyms may meet the accounts of the server it came from.
            self.users[name], created = imported_account(name, refuse_login_accounts=False)
            self.summary.users += created
        return self.users[name]

    def question(self, record):
        exported_id = record["question_id"]
        if exported_id in self.questions:
            return self.questions[exported_id]
        q, line = record["question"], record["_line"]
        existing = None
        if q.get("external_id"):
            existing = Question.objects.filter(source=q.get("source", ""), external_id=q["external_id"]).first()
        if existing is None:
            existing = Question.objects.create(
                kind=q["kind"],
                title=q.get("title") or "",
                text=q["text"],
                answers=q["answers"],
                correct_index=q["correct_index"],
                public_material=q.get("public_material") or "",
                hidden_material=q.get("hidden_material") or "",
                hidden_image=_json(q.get("hidden_image_json"), line, "question.hidden_image_json"),
                source=q.get("source") or "",
                external_id=q.get("external_id") or "",
                metadata=_json(q.get("metadata_json"), line, "question.metadata_json", {}),
            )
            self.timestamps.append((existing, _when(q.get("created_at"), line, "question.created_at")))
            self.summary.questions += 1
        self.questions[exported_id] = existing
        return existing

    def version(self, record):
        exported_id = record.get("experiment_version_id")
        if exported_id is None:
            return None
        if exported_id in self.versions:
            return self.versions[exported_id]
        line = record["_line"]
        if self.owner is None:
            raise ImportRefused(
                f"line {line}: the records belong to experiment {record.get('experiment')!r}; "
                "name an owner for the imported experiments"
            )
        about = self.version_definitions.get(exported_id, {})
        experiment, created = Experiment.objects.get_or_create(owner=self.owner, name=record["experiment"])
        if created and about.get("experiment_created_at"):
            self.timestamps.append((experiment, _when(about["experiment_created_at"], line, "experiment_created_at")))
        version = ExperimentVersion.objects.filter(experiment=experiment, number=record["experiment_version"]).first()
        if version is None:
            version = ExperimentVersion.objects.create(
                experiment=experiment,
                number=record["experiment_version"],
                definition=about.get("definition", {}),
                source_text=about.get("source_text") or "",
                source_name=about.get("source_name", ""),
                frozen_at=_when(about.get("frozen_at"), line, "frozen_at"),
                code_version=about.get("code_version", ""),
                created_by=self.owner,
            )
            if about.get("created_at"):
                self.timestamps.append((version, _when(about["created_at"], line, "created_at")))
            self.summary.experiment_versions += 1
        self.versions[exported_id] = version
        return version

    def debate(self, record):
        exported_id = record["debate_id"]
        if exported_id in self.debates:
            return self.debates[exported_id]
        line = record["_line"]
        source, external_id = record.get("debate_source") or "", record.get("debate_external_id") or ""
        if external_id and Debate.objects.filter(source=source, external_id=external_id).exists():
            raise ImportRefused(f"line {line}: debate {source}/{external_id} is already in this DebateLab")
        debate = Debate.objects.create(
            question=self.question(record),
            experiment_version=self.version(record),
            protocol_name=record.get("protocol_name") or "",
            protocol=_json(record.get("protocol_json"), line, "protocol_json", {}),
            status=record.get("debate_status") or Debate.COMPLETE,
            answer_order=record.get("answer_order") or [],
            last_seq=record.get("last_seq") or 0,
            turn_deadline=_when(record.get("turn_deadline"), line, "turn_deadline"),
            source=source,
            external_id=external_id,
            provenance=_json(record.get("debate_provenance_json"), line, "debate_provenance_json", {}),
            created_by=self.user(record.get("debate_created_by")),
            started_at=_when(record.get("debate_started_at"), line, "debate_started_at"),
            ended_at=_when(record.get("debate_ended_at"), line, "debate_ended_at"),
        )
        self.timestamps.append((debate, _when(record.get("debate_created_at"), line, "debate_created_at")))
        Participant.objects.bulk_create(
            [
                Participant(
                    debate=debate,
                    seat=p["seat"],
                    user=self.user(p.get("participant")),
                    answer_index=p.get("answer_index"),
                    alias=p.get("alias") or "",
                    agent=_json(p.get("agent_json"), line, "participants.agent_json"),
                )
                for p in record["participants"]
            ]
        )
        turns = []
        for t in record["turns"]:
            payload = _json(t.get("payload_json"), line, "turns.payload_json", {})
            if t.get("quotes") is not None:  # exported beside the rest of the payload, as declared fields
                payload["quotes"] = [export.undeclared(q, export.QUOTE_FIELDS) for q in t["quotes"]]
            turns.append(
                Turn(
                    debate=debate,
                    round_index=t["round"],
                    seat=t["seat"],
                    kind=t["kind"],
                    text=t.get("text") or "",
                    probabilities=t.get("probabilities"),
                    end_debate=bool(t.get("end_debate")),
                    private_note=t.get("private_note") or "",
                    payload=payload,
                    client_id=t.get("client_id") or "",
                    author=self.user(t.get("author")),
                )
            )
        Turn.objects.bulk_create(turns)
        for turn, t in zip(turns, record["turns"]):
            self.timestamps.append((turn, _when(t.get("created_at"), line, "turns.created_at")))
        self.debates[exported_id] = debate
        self.summary.debates += 1
        return debate

    def verdict(self, record):
        line = record["_line"]
        provenance = _json(record.get("verdict_provenance_json"), line, "verdict_provenance_json", {})
        verdict = verdicts.build_verdict(
            self.debate(record),
            record["probabilities"],
            judge=self.user(record.get("judge")),
            judge_kind=record["judge_kind"],
            ai_judge=record.get("ai_judge") or "",
            live=bool(record.get("live", True)),
            reason=record.get("reason") or "",
            seconds_spent=record.get("seconds_spent"),
            after_turn=record.get("after_turn") or 0,
            after_seq=record.get("after_seq") or 0,
            client_id=record.get("client_id") or "",
            provenance=provenance,
            source_rule=verdicts.source_rule(
                provenance.get("tie_rule"),
                record["chosen_index"],
                record["correct"],
                record["score"],
                record.get("scoring_rule") or "log",
            ),
        )
        verdict.hidden_seconds = quality.hidden_seconds(record.get("hidden_seconds"))
        verdict.save()
        self.timestamps.append((verdict, _when(record.get("verdict_created_at"), line, "verdict_created_at")))
        self.summary.verdicts += 1

    def restore_timestamps(self):
        by_model = {}
        for obj, when in self.timestamps:
            if when is not None:
                obj.created_at = when
                by_model.setdefault(type(obj), []).append(obj)
        for model, objects in by_model.items():
            model.objects.bulk_update(objects, ["created_at"], batch_size=1000)


def import_dataset(verdict_lines, version_lines=(), owner=None, on_record=None) -> ImportSummary:
    """Import an export's records (and its experiment versions). Refuses, changing nothing, on the
    first bad line or on a debate that is already here."""
    records = parse_lines(verdict_lines)
    versions = {v.get("experiment_version_id"): v for v in parse_lines(version_lines, "experiment version")}
    for record in records:
        missing = [key for key in REQUIRED if key not in record]
        if missing:
            raise ImportRefused(f"line {record['_line']}: missing {', '.join(missing)}")
        if not isinstance(record["turns"], list) or not isinstance(record["participants"], list):
            raise ImportRefused(f"line {record['_line']}: turns and participants must be lists")
    importer = _Importer(owner, versions)
    with transaction.atomic():
        for record in records:
            try:
                importer.verdict(record)
            except (KeyError, TypeError) as error:
                raise ImportRefused(f"line {record['_line']}: malformed record ({error!r})") from None
            if on_record:
                on_record()
        importer.restore_timestamps()
    return importer.summary
