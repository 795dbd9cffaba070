"""Storing the human-judged LLM debates of Khan et al. 2024 (debates.importers.khan_format): each
row a debate (question, seats, turns with re-checked quotes and best-of-N candidates) and the
person's verdict, recorded through judging.verdicts under the dataset's own rule. All or nothing:
a file with any bad row is refused with the rows' lines. Idempotent on the row's
debate_id/judge_id: rows imported before are left alone.

Judges are pseudonymous ids; each becomes an inactive user "khan:judge-<id>" with an unusable
password, as the NYU import does, so nobody can log in as them. The AI debaters are AI seats.
"""

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from debates.importers.khan_format import SOURCE, TIE_RULE, KhanFileError, plan_rows, read_rows
from debates.importers.quality_format import SOURCE as QUALITY_SOURCE
from debates.models import Debate, Participant, Question, Story, Turn
from debates.protocol import JUDGE
from debates.provenance import code_version

from . import scoring, verdicts
from .imported_accounts import LoginAccountInTheWay, imported_account

USER_PREFIX = "khan:judge-"


@dataclass
class KhanImport:
    debates: int = 0
    already_imported: list = field(default_factory=list)
    questions_created: int = 0
    users_created: int = 0
    quotes_verified: int = 0
    quotes_checked: int = 0
    candidates_kept: int = 0


def import_khan(path: Path, quality_source: str = QUALITY_SOURCE) -> KhanImport:
    fmt = "csv" if Path(path).suffix.lower() == ".csv" else "jsonl"
    stories = _StoryFinder(quality_source)
    plans = plan_rows(read_rows(Path(path).read_text(encoding="utf-8"), fmt), stories.text)
    result = KhanImport()
    with transaction.atomic():
        store = _Store(result, stories)
        imported = set(
            Debate.objects.filter(source=SOURCE, external_id__in=[p.external_id for p in plans]).values_list(
                "external_id", flat=True
            )
        )
        for plan in plans:
            if plan.external_id in imported:
                result.already_imported.append(plan.external_id)
                continue
            store.debate(plan)
            imported.add(plan.external_id)
    return result


class _StoryFinder:
    """The QuALITY story of a question set: through a stored question of that set, else the one
    story with that title."""

    def __init__(self, source: str):
        self.source = source
        self.found = {}

    def story(self, set_id: str, title) -> Story | None:
        if set_id not in self.found:
            question = (
                Question.objects.filter(source=self.source, metadata__set_unique_id=set_id, story__isnull=False)
                .select_related("story")
                .first()
            )
            story = question.story if question else None
            if story is None and title:
                titled = list(Story.objects.filter(source=self.source, title__iexact=str(title).strip())[:2])
                story = titled[0] if len(titled) == 1 else None
            self.found[set_id] = story
        return self.found[set_id]

    def text(self, set_id: str, title) -> str | None:
        story = self.story(set_id, title)
        return story.text if story else None


class _Store:
    def __init__(self, result: KhanImport, stories: _StoryFinder):
        self.result, self.stories, self.users, self.questions = result, stories, {}, {}

    def debate(self, plan):
        question = self._question(plan)
        debate = Debate.objects.create(
            question=question,
            protocol=plan.protocol.to_dict(),
            protocol_name=plan.protocol_name,
            status=Debate.COMPLETE,
            answer_order=plan.answer_order,
            source=SOURCE,
            external_id=plan.external_id,
            provenance=dict(
                plan.provenance, format=plan.method, code_version=code_version(), imported_at=timezone.now().isoformat()
            ),
        )
        judge = self._user(plan.judge_id)
        config = plan.provenance["row"].get("debater_config")
        Participant.objects.bulk_create(
            [
                Participant(
                    debate=debate,
                    seat=seat,
                    answer_index=answer,
                    agent={"kind": "imported", "model": str(config or "llm_debate")} if answer is not None else None,
                )
                for seat, answer in plan.seats.items()
            ]
            + [Participant(debate=debate, seat=JUDGE, user=judge)]
        )
        Turn.objects.bulk_create(
            [
                Turn(
                    debate=debate,
                    round_index=t.round_index,
                    seat=t.seat,
                    kind=t.kind,
                    text=t.text,
                    payload=t.payload,
                    author=judge if t.seat == JUDGE else None,
                )
                for t in plan.turns
            ]
        )
        for turn in plan.turns:
            checked = turn.payload.get("quotes") or []
            self.result.quotes_checked += len(checked)
            self.result.quotes_verified += sum(1 for q in checked if q["status"] == "verified")
            self.result.candidates_kept += 1 if "candidates" in turn.payload else 0
        chosen = 0 if plan.correct else 1
        verdicts.build_verdict(
            debate,
            plan.probabilities,
            judge=judge,
            reason=plan.reason or "(no explanation given)",
            after_turn=len(plan.turns),
            after_seq=0,
            provenance={"dataset": SOURCE, "line": plan.line},
            source_rule=verdicts.source_rule(
                TIE_RULE, chosen, plan.correct, scoring.score("log", plan.probabilities, 0)
            ),
        ).save()
        self.result.debates += 1

    def _question(self, plan) -> Question:
        digest = hashlib.sha256("\x1f".join([plan.question, *plan.answers]).encode()).hexdigest()[:12]
        external_id = f"{plan.question_set_id}:{digest}"
        question = (
            self.questions.get(external_id) or Question.objects.filter(source=SOURCE, external_id=external_id).first()
        )
        if question is None:
            story = self.stories.story(plan.question_set_id, plan.provenance["row"].get("story_title"))
            question = Question.objects.create(
                kind=Question.KIND_TEXT,
                text=plan.question,
                answers=plan.answers,
                correct_index=0,
                story=story,
                title=story.title,
                source=SOURCE,
                external_id=external_id,
                metadata={"quality_set_unique_id": plan.question_set_id, "quality_article_id": story.external_id},
            )
            self.result.questions_created += 1
        self.questions[external_id] = question
        return question

    def _user(self, judge_id: str):
        username = f"{USER_PREFIX}{judge_id}"
        if username not in self.users:
            try:
                self.users[username], created = imported_account(username)
            except LoginAccountInTheWay as error:
                raise KhanFileError([(0, str(error))]) from None
            self.result.users_created += created
        return self.users[username]
