"""Storing the NYU debate dataset (2023): every story question as a Question, every room as a
Debate with its seats, turns, events and verdicts. Idempotent on the room name: a room already
imported is left alone (and reported when its file has changed since).

People in the dataset are pseudonyms ("Hopsy Hummingbird"). Each becomes an inactive Django user
named "nyu:<pseudonym>" with an unusable password, so verdicts and turns point at a judge or
debater the analysis can group by, and nobody can ever log in as them. GPT-4 seats are AI seats
without a user.
"""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from debates.models import Debate, DebateEvent, Participant, Question, Turn
from debates.provenance import code_version

from debates.importers.nyu_format import AI_NAMES, SOURCE, RoomPlan, RoomProblem, article_id, plan_room, protocol_name

from . import verdicts
from .imported_accounts import LoginAccountInTheWay, imported_account
from .models import Verdict

USER_PREFIX = "nyu:"
ROOMS_FOLDER = Path("debates") / "official"
METADATA_FILE = "debates-metadata.jsonl"
# The dataset's own rule, kept for its verdicts (the paper counts p(correct) > 0.5 as correct).
TIE_RULE = "nyu-debate-2023: correct only when p(correct) > 0.5, so a tie is wrong"


class DatasetMissing(Exception):
    """The folder is not an NYU dataset `pub/` folder."""


@dataclass
class NyuImport:
    imported: list = field(default_factory=list)  # room names
    already_imported: list = field(default_factory=list)
    changed_since_import: list = field(default_factory=list)  # imported before from a different file
    problems: list = field(default_factory=list)  # (room name, why it cannot be represented)
    notes: dict = field(default_factory=dict)  # room name -> what is kept in provenance only, or adjusted
    questions_created: int = 0
    users_created: int = 0
    verdicts_created: int = 0


def dataset_folder(path: Path) -> Path:
    """Accepts the dataset folder or its pub/ folder; returns pub/."""
    path = Path(path)
    for candidate in (path, path / "pub"):
        if (candidate / ROOMS_FOLDER).is_dir():
            return candidate
    raise DatasetMissing(
        f"{path} is not the NYU debate dataset: no {ROOMS_FOLDER}/ folder in it or in its pub/ "
        f"folder (the dataset lives in shared/datasets/nyu-debate-2023/)"
    )


def room_files(pub: Path) -> list[Path]:
    return sorted((pub / ROOMS_FOLDER).glob("*.json"))


def read_metadata(pub: Path) -> dict:
    """Room name -> its line of debates-metadata.jsonl ({} when the file is absent)."""
    path = pub / METADATA_FILE
    if not path.exists():
        return {}
    rows = (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {row["name"]: row for row in rows}


def import_nyu(pub: Path, progress=lambda files: files) -> NyuImport:
    """progress wraps the list of room files (a tqdm bar in the command)."""
    pub = dataset_folder(pub)
    metadata = read_metadata(pub)
    result = NyuImport()
    imported = dict(Debate.objects.filter(source=SOURCE).values_list("external_id", "provenance__sha256"))
    store = _Store(result)
    for path in progress(room_files(pub)):
        name = path.stem
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if name in imported:
            (result.already_imported if imported[name] == digest else result.changed_since_import).append(name)
            continue
        try:
            room = json.loads(raw)
            plan = plan_room(room, metadata.get(name), path.name, digest, store.story(article_id(room)))
            store.room(plan)
        except json.JSONDecodeError as e:
            result.problems.append((name, f"not valid JSON ({e.msg}, line {e.lineno})"))
        except RoomProblem as e:
            result.problems.append((name, str(e)))
        else:
            result.imported.append(name)
            if plan.notes:
                result.notes[name] = plan.notes
    return result


class _Store:
    """Writes room plans; remembers the users and questions it has seen to spare queries."""

    def __init__(self, result: NyuImport):
        self.result = result
        self.users = {}
        self.questions = {}
        self.stories = {}  # QuALITY article id -> the story text stored for it

    def room(self, plan: RoomPlan):
        try:
            with transaction.atomic():
                self._room(plan)
        except Exception:
            self.users.clear()  # they may hold rows the rollback removed
            self.questions.clear()
            self.stories.clear()
            raise

    def story(self, article: str | None) -> str | None:
        """Every question about one story shares one copy of its text."""
        if article is not None and article not in self.stories:
            stored = Question.objects.filter(source=SOURCE, metadata__quality_article_id=article)
            self.stories[article] = stored.values_list("hidden_material", flat=True).first()
        return self.stories.get(article)

    def _room(self, plan: RoomPlan):
        question = self._question(plan)
        debate = Debate.objects.create(
            question=question,
            protocol=plan.protocol.to_dict(),
            protocol_name=protocol_name(plan.provenance["setting"]),
            status=plan.status,
            answer_order=plan.answer_order,
            last_seq=len(plan.events),
            source=SOURCE,
            external_id=plan.name,
            provenance=dict(plan.provenance, code_version=code_version(), imported_at=timezone.now().isoformat()),
            started_at=_time(plan.started_ms),
            ended_at=_time(plan.ended_ms),
        )
        if plan.created_ms:
            Debate.objects.filter(pk=debate.pk).update(created_at=_time(plan.created_ms))
        Participant.objects.bulk_create(
            [
                Participant(
                    debate=debate,
                    seat=seat.seat,
                    answer_index=seat.answer_index,
                    alias=seat.name[:60],
                    user=None if seat.is_ai else self._user(seat.name),
                    agent={"kind": "imported", "model": seat.name} if seat.is_ai else None,
                )
                for seat in plan.seats
            ]
        )
        turns = Turn.objects.bulk_create(
            [
                Turn(
                    debate=debate,
                    round_index=t.round_index,
                    seat=t.seat,
                    kind=t.kind,
                    text=t.text,
                    probabilities=t.probabilities,
                    end_debate=t.end_debate,
                    payload=t.payload,
                    author=self._user(t.author_name) if t.author_name else None,
                )
                for t in plan.turns
            ]
        )
        _keep_times(Turn, turns, [t.at_ms for t in plan.turns])
        events = DebateEvent.objects.bulk_create(
            [
                DebateEvent(debate=debate, seq=seq, kind=e.kind, audience=e.audience, data=e.data)
                for seq, e in enumerate(plan.events, start=1)
            ]
        )
        _keep_times(DebateEvent, events, [e.at_ms for e in plan.events])
        stored = Verdict.objects.bulk_create([self._verdict(debate, v) for v in plan.verdicts])
        _keep_times(Verdict, stored, [v.at_ms for v in plan.verdicts])
        self.result.verdicts_created += len(stored)

    def _question(self, plan: RoomPlan) -> Question:
        wanted = plan.question
        question = self.questions.get(wanted.external_id)
        if question is None:
            question = Question.objects.filter(source=SOURCE, external_id=wanted.external_id).first()
        if question is None:
            question = Question.objects.create(
                kind=Question.KIND_TEXT,
                text=wanted.text,
                answers=wanted.answers,
                correct_index=wanted.correct_index,
                hidden_material=wanted.hidden_material,
                title=wanted.title,
                source=SOURCE,
                external_id=wanted.external_id,
                metadata=wanted.metadata,
            )
            self.result.questions_created += 1
            self.stories[wanted.metadata["quality_article_id"]] = wanted.hidden_material
        elif (question.answers, question.correct_index, question.hidden_material) != (
            wanted.answers,
            wanted.correct_index,
            wanted.hidden_material,
        ):
            raise RoomProblem(
                f"its story, answers or correct answer differ from question {question.external_id} "
                f"stored before (debate quotes point into that story)"
            )
        self.questions[wanted.external_id] = question
        return question

    def _user(self, name: str):
        username = f"{USER_PREFIX}{name}"
        if username not in self.users:
            try:
                self.users[username], created = imported_account(username)
            except LoginAccountInTheWay as error:
                raise RoomProblem(str(error)) from None
            self.result.users_created += created
        return self.users[username]

    def _verdict(self, debate: Debate, verdict):
        ai = verdict.judge_name in AI_NAMES
        return verdicts.build_verdict(
            debate,
            verdict.probabilities,
            judge=None if ai else self._user(verdict.judge_name),
            judge_kind=Verdict.AI if ai else Verdict.HUMAN,
            ai_judge=verdict.judge_name if ai else "",
            live=verdict.live,
            reason=verdict.reason,
            seconds_spent=verdict.seconds_spent,
            after_turn=verdict.after_turn,
            after_seq=verdict.after_seq,
            provenance=dict(verdict.provenance, code_version=code_version()),
            source_rule=verdicts.source_rule(TIE_RULE, verdict.chosen_index, verdict.correct, verdict.score),
        )


def _time(ms):
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def _keep_times(model, rows, times_ms):
    """created_at is set to 'now' on insert; the dataset's own times replace it. One UPDATE per
    table and room, written out because bulk_update spends most of the import building it."""
    dated = [(row.pk, connection.ops.adapt_datetimefield_value(_time(ms))) for row, ms in zip(rows, times_ms) if ms]
    if not dated:
        return
    table = connection.ops.quote_name(model._meta.db_table)
    cases = " ".join(["WHEN %s THEN %s"] * len(dated))
    ids = ", ".join(["%s"] * len(dated))
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET created_at = CASE id {cases} END WHERE id IN ({ids})",
            [value for pair in dated for value in pair] + [pk for pk, _ in dated],
        )
