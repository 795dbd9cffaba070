"""Experiments: load a definition (from a file or the web form), freeze it when it starts, and
create its counterbalanced debates. Every debate records the version, seed and code version."""

import logging
import random
from collections import defaultdict

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from . import experiment_spec, services
from .models import Debate, Experiment, ExperimentVersion, Participant, Question
from .protocol import JUDGE, Protocol, Refused
from .provenance import code_version

log = logging.getLogger(__name__)


def load_experiment(text: str, owner, source_name: str = "") -> tuple[ExperimentVersion, bool]:
    """Parse and store a definition. Returns (version, created). An unchanged definition returns the
    latest version; a changed one edits an unstarted version or adds a new one after a frozen one.
    Old spellings are logged here; the pages and the command show them (experiment_spec.check)."""
    checked = experiment_spec.check(text)
    definition = checked.definition
    for deprecation in checked.deprecations:
        log.warning(
            "experiment %r (%s) uses an old spelling: %s", definition["name"], source_name or "no file", deprecation
        )
    with transaction.atomic():
        experiment, _ = Experiment.objects.get_or_create(owner=owner, name=definition["name"])
        latest = ExperimentVersion.objects.select_for_update().filter(experiment=experiment).order_by("-number").first()
        if latest and experiment_spec.canonical_json(latest.definition) == experiment_spec.canonical_json(definition):
            return latest, False
        if latest and latest.frozen_at is None:
            latest.definition, latest.source_text, latest.source_name = definition, text, source_name
            latest.save(update_fields=["definition", "source_text", "source_name"])
            return latest, False
        version = ExperimentVersion.objects.create(
            experiment=experiment,
            number=(latest.number + 1) if latest else 1,
            definition=definition,
            source_text=text,
            source_name=source_name,
            created_by=owner,
        )
        return version, True


def availability_problems(definition: dict, text: str = "") -> list[str]:
    """What a parsed definition names that this platform does not have: a dataset source with no
    questions, pool members with no account. Each problem points at its line in `text` when found
    there, so a save can be refused with errors like the parser's."""
    problems = []
    source = (definition.get("dataset") or {}).get("source")
    if source and not Question.objects.filter(source=source).exists():
        known = sorted(Question.objects.order_by().values_list("source", flat=True).distinct()[:20])
        problems.append(
            f"line {_line_of(text, 'source')}: dataset.source: no questions with source {source!r} "
            f"(available: {', '.join(repr(k) for k in known if k) or 'none; import questions first'})"
        )
    User = get_user_model()
    for role in ("debaters", "judges"):
        names = (definition.get(role) or {}).get("pool") or []
        missing = sorted(set(names) - set(User.objects.filter(username__in=names).values_list("username", flat=True)))
        if missing:
            line = _line_of(text, "pool", start=_line_of(text, role))
            problems.append(f"line {line}: {role}.pool: no such users: {', '.join(missing)}")
    gold = ((definition.get("study") or {}).get("gold") or {}).get("debates") or []
    finished = set(
        Debate.objects.filter(pk__in=gold, status__in=(Debate.COMPLETE, Debate.AWAITING_VERDICT)).values_list(
            "pk", flat=True
        )
    )
    if set(gold) - finished:
        missing = ", ".join(str(d) for d in gold if d not in finished)
        problems.append(f"line {_line_of(text, 'gold')}: study.gold.debates: no finished debates with ids {missing}")
    return problems


def _line_of(text: str, key: str, start: int = 1) -> int:
    """The first line at or after `start` whose field is `key` (YAML or JSON); `start` when none is."""
    for number, row in enumerate(text.splitlines()[start - 1 :], start):
        if row.strip().lstrip("-{ ").strip().strip('"').startswith(key):
            return number
    return start


def select_questions(dataset: dict) -> list[Question]:
    questions = Question.objects.filter(source=dataset["source"]).order_by("id")
    if dataset.get("ids"):
        questions = questions.filter(external_id__in=dataset["ids"])
    questions = list(questions)
    if dataset.get("sample_seed") is not None:
        random.Random(dataset["sample_seed"]).shuffle(questions)
    if dataset.get("limit"):
        questions = questions[: dataset["limit"]]
    return questions


def start_experiment(version_id: int) -> list[Debate]:
    """Freeze the version and create its debates. Refused when already started or the dataset is empty."""
    with transaction.atomic():
        version = ExperimentVersion.objects.select_for_update().get(pk=version_id)
        if version.frozen_at is not None:
            raise Refused("already_started", f"{version} has already started; edit it to make a new version")
        definition = version.definition
        questions = select_questions(definition["dataset"])
        if not questions:
            raise Refused("no_questions", f"no questions with source {definition['dataset']['source']!r}")
        seed = definition["counterbalance"]["seed"]
        plan = experiment_spec.counterbalanced_plan(
            [(q.pk, len(q.answers), q.correct_index) for q in questions], definition["protocols"], seed
        )
        protocols = {p["name"]: p for p in definition["protocols"]}
        people = _Roster(definition)
        by_id = {q.pk: q for q in questions}
        debates = [_create(version, by_id[c.question_id], protocols[c.protocol_name], c, people, seed) for c in plan]
        version.frozen_at = timezone.now()
        version.code_version = code_version()
        version.save(update_fields=["frozen_at", "code_version"])
    for debate in debates:
        if _ready_to_start(debate):
            from .live import publish

            publish(debate.pk, services.start_debate(debate.pk))
    return debates


def _create(version, question, protocol_spec, condition, people, seed) -> Debate:
    definition = version.definition
    protocol = Protocol.from_dict(dict(protocol_spec["protocol"], speaking_order=list(condition.speaking_order)))
    debaters = {}
    for seat, answer in condition.seat_answers.items():
        # Direct judging has a debater seat that never speaks: nobody is seated in it.
        debaters[seat] = (people.debater_for(question, seat) if protocol.has_speeches else None, answer)
    judge = people.judge_for(question, [u for u, _ in debaters.values() if u])
    debate = services.create_debate(question, protocol, debaters, judge=judge, answer_order=condition.answer_order)
    debate.experiment_version = version
    debate.protocol_name = protocol_spec["name"]
    debate.provenance = {
        "experiment": version.experiment.name,
        "experiment_version": version.number,
        "experiment_version_id": version.pk,
        "protocol": protocol_spec["name"],
        "format": protocol_spec["format"],
        "counterbalance_seed": seed,
        "honest_seats": list(condition.honest_seats),
        "debaters": {k: v for k, v in definition["debaters"].items() if k != "pool"},
        "judges": {k: v for k, v in definition["judges"].items() if k != "pool"},
        "prompts": definition.get("prompts", {}),
        "code_version": code_version(),
    }
    debate.save(update_fields=["experiment_version", "protocol_name", "provenance"])
    if definition["debaters"]["kind"] == "ai" and protocol.has_speeches:
        agent = {k: definition["debaters"][k] for k in ("backend", "model", "parameters", "best_of_n")}
        agent["prompts"] = definition.get("prompts", {})
        Participant.objects.filter(debate=debate).exclude(seat__in=(JUDGE, Participant.OBSERVER)).update(agent=agent)
    if definition["judges"]["kind"] == "ai" and judge is None:
        Participant.objects.create(debate=debate, seat=JUDGE, agent=ai_judge_agent(definition))
    if definition["blinding"]["aliases"]:
        for participant in debate.participants.exclude(seat__in=(JUDGE, Participant.OBSERVER)):
            participant.alias = f"Debater {participant.seat}"
            participant.save(update_fields=["alias"])
    return debate


def ai_judge_agent(definition: dict) -> dict:
    """The agent settings of an experiment's AI judge seat (judging plays it: feedback in each
    judge feedback round, then the verdict)."""
    judges = definition["judges"]
    return {
        "backend": judges["backend"],
        "model": judges.get("model"),
        "parameters": judges.get("parameters") or {},
        "prompts": definition.get("prompts", {}),
    }


def _ready_to_start(debate: Debate) -> bool:
    seats = list(debate.participants.exclude(seat=Participant.OBSERVER))
    speaks = debate.get_protocol().has_speeches
    debaters_ready = all(p.user_id or p.agent or not speaks for p in seats if p.is_debater)
    judge_ready = any(p.seat == JUDGE and (p.user_id or p.agent) for p in seats)
    return debaters_ready and judge_ready


class _Roster:
    """Hands out human debaters and judges from the experiment's pools, balancing workload. A judge
    never judges a question they debated and judges each question at most once."""

    def __init__(self, definition):
        User = get_user_model()
        self.debaters = self._users(User, definition["debaters"].get("pool"), definition["debaters"]["kind"] == "human")
        self.judges = self._users(User, definition["judges"].get("pool"), definition["judges"]["kind"] == "human")
        self.load = defaultdict(int)
        self.debated = defaultdict(set)  # user id -> question ids
        self.judged = defaultdict(set)

    @staticmethod
    def _users(User, names, wanted):
        if not wanted or not names:
            return []
        users = list(User.objects.filter(username__in=names))
        missing = set(names) - {u.username for u in users}
        if missing:
            raise Refused("unknown_users", f"no such users: {', '.join(sorted(missing))}")
        return users

    def debater_for(self, question, seat):
        candidates = [u for u in self.debaters if question.pk not in self.debated[u.pk]]
        if not candidates:
            return None
        user = min(candidates, key=lambda u: (self.load[u.pk], u.pk))
        self.load[user.pk] += 1
        self.debated[user.pk].add(question.pk)
        return user

    def judge_for(self, question, debaters):
        excluded = {u.pk for u in debaters}
        candidates = [
            u
            for u in self.judges
            if u.pk not in excluded and question.pk not in self.judged[u.pk] and question.pk not in self.debated[u.pk]
        ]
        if not candidates:
            return None
        user = min(candidates, key=lambda u: (self.load[u.pk], u.pk))
        self.load[user.pk] += 1
        self.judged[user.pk].add(question.pk)
        return user
