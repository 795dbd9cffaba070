"""Experiments with real debates for the analysis, export and API tests: every debate is played
through the platform's own write path (create_debate, start_debate, submit_action, submit_verdict),
with seeded random judges, so the numbers differ with the seed and nothing is hard-coded."""

import random

import pytest

from django.contrib.auth.models import Group, User

from debates import services
from debates.models import Debate, Experiment, ExperimentVersion, Participant, Question
from debates.protocol import Protocol
from judging import scoring
from judging.models import Verdict
from judging.services import submit_verdict

DEBATE = Protocol(rounds=("simultaneous", "judge_feedback", "sequential", "judge_feedback"), char_limit=2000)
CONSULTANCY = Protocol(
    rounds=("sequential", "judge_feedback", "sequential", "judge_feedback"), debaters=("A",), char_limit=2000
)
PASSAGE = "The lighthouse keeper counted forty ships in the storm and rescued every sailor on the rocks."


def user(username, role=None):
    person, created = User.objects.get_or_create(username=username)
    if created:
        person.set_password("pass-for-tests-1")
        person.save()
    if role:
        person.groups.add(Group.objects.get_or_create(name=role)[0])
    return person


def _probabilities(rng, leaning_correct: bool, correct_shown: int) -> list[float]:
    """Display-order probabilities for two answers, leaning toward the correct answer or not."""
    p = rng.choice([0.55, 0.6, 0.7, 0.8, 0.9, 0.95])
    p_correct = p if leaning_correct else 1 - p
    shown = [0.0, 0.0]
    shown[correct_shown] = p_correct
    shown[1 - correct_shown] = round(1 - p_correct, 10)
    return shown


def play(debate: Debate, judge, rng, skill: float, hidden_quote: bool = True) -> Verdict:
    """Play a debate to its end through the services and give the live judge's verdict."""
    services.start_debate(debate.pk)
    debaters = {p.seat: p.user for p in debate.participants.exclude(seat__in=("judge", "observer"))}
    correct_shown = debate.shown_answer_order().index(debate.question.correct_index)
    turn = 0
    while True:
        debate.refresh_from_db()
        if debate.status != Debate.LIVE:
            break
        engine = debate.engine()
        for seat in engine.expected_seats():
            turn += 1
            if seat == "judge":
                services.submit_action(
                    debate.pk,
                    judge,
                    kind="feedback",
                    text=f"Round {turn} thoughts",
                    probabilities=_probabilities(rng, rng.random() < skill, correct_shown),
                )
            else:
                quote = "<quote>counted forty ships</quote> " if hidden_quote and turn % 2 else ""
                services.submit_action(
                    debate.pk,
                    debaters[seat],
                    kind="speech",
                    text=f"{quote}Argument {turn} from {seat}.",
                    private_note=f"note {turn}",
                    client_id=f"{debate.pk}-{turn}",
                )
            break
    verdict, _ = submit_verdict(
        debate.pk,
        judge,
        _probabilities(rng, rng.random() < skill, correct_shown),
        f"Reason {debate.pk}",
        seconds_spent=round(rng.uniform(20, 200), 1),
    )
    return verdict


def build_experiment(owner, seed=0, questions=4, judges=3, ai_verdicts=True, name="Study") -> Experiment:
    """An experiment with a debate and a consultancy protocol: per question, each protocol is played
    once per human judge; AI judges add offline verdicts to the debates."""
    rng = random.Random(seed)
    experiment = Experiment.objects.create(name=name, owner=owner)
    version = ExperimentVersion.objects.create(
        experiment=experiment,
        number=1,
        code_version="test",
        created_by=owner,
        definition={
            "name": name,
            "target_verdicts": 40,
            "dataset": {"source": "tests"},
            "protocols": [
                {"name": "debate", "format": "debate", "protocol": DEBATE.to_dict()},
                {"name": "consultancy", "format": "consultancy", "protocol": CONSULTANCY.to_dict()},
            ],
            "debaters": {"kind": "human"},
            "judges": {"kind": "human", "per_debate": 1},
            "counterbalance": {"seed": seed},
            "blinding": {"aliases": True},
        },
    )
    debaters = [user(f"{name}-debater{i}", "debater") for i in range(4)]
    judge_users = [user(f"{name}-judge{i}", "judge") for i in range(judges)]
    for q in range(questions):
        question = Question.objects.create(
            text=f"{name} question {q}: how many ships?",
            answers=["forty", "four"],
            correct_index=q % 2,
            hidden_material=PASSAGE,
            public_material="A story about a storm.",
            source="tests",
            external_id=f"{name}-q{q}",
        )
        for j, judge in enumerate(judge_users):
            for protocol_name, protocol in (("debate", DEBATE), ("consultancy", CONSULTANCY)):
                a, b = rng.sample(debaters, 2)
                honest_a = rng.random() < 0.5
                correct, wrong = question.correct_index, 1 - question.correct_index
                seats = {"A": (a, correct if honest_a else wrong)}
                if protocol_name == "debate":
                    seats["B"] = (b, wrong if honest_a else correct)
                debate = services.create_debate(
                    question, protocol, seats, judge=judge, seed=rng.randrange(1000), created_by=owner
                )
                debate.experiment_version = version
                debate.protocol_name = protocol_name
                debate.provenance = {
                    "experiment": name,
                    "experiment_version": 1,
                    "protocol": protocol_name,
                    "format": protocol_name,
                    "code_version": "test",
                    "seed": seed,
                }
                debate.save(update_fields=["experiment_version", "protocol_name", "provenance"])
                skill = 0.8 if protocol_name == "debate" else 0.6
                play(debate, judge, rng, skill)
                if ai_verdicts and j == 0:
                    for model in ("model-x", "model-y"):
                        chosen = question.correct_index if rng.random() < 0.7 else 1 - question.correct_index
                        probabilities = [0.2, 0.2]
                        probabilities[chosen] = 0.8
                        Verdict.objects.create(
                            debate=debate,
                            judge=None,
                            judge_kind=Verdict.AI,
                            ai_judge=model,
                            live=False,
                            probabilities=probabilities,
                            chosen_index=chosen,
                            correct=chosen == question.correct_index,
                            reason="AI reason",
                            after_turn=4,
                            after_seq=debate.last_seq,
                            scoring_rule="log",
                            score=scoring.score("log", probabilities, question.correct_index),
                            provenance={"model": model, "seed": seed},
                        )
    return experiment


def debater_seats(debate):
    return debate.participants.filter(answer_index__isnull=False)


__all__ = ["build_experiment", "user", "play", "Participant"]


def delete_everything():
    """Remove what build_experiment made (data committed outside the per-test transactions)."""
    from debates.models import Experiment as E, Question as Q

    Verdict.objects.all().delete()
    Debate.objects.all().delete()
    Q.objects.all().delete()
    ExperimentVersion.objects.all().delete()
    E.objects.all().delete()
    User.objects.all().delete()


def experiment_fixtures(**build):
    """Module fixtures `shared`, `owner` and `experiment`: one experiment built for the whole test
    module (playing its debates takes a while) with build_experiment(**build), deleted afterwards.
    Use as `shared, owner, experiment = experiment_fixtures(seed=5)` at module level."""

    @pytest.fixture(scope="module")
    def shared(django_db_setup, django_db_blocker):
        with django_db_blocker.unblock():
            owner = user("rita", "researcher")
            experiment = build_experiment(owner, **build)
        yield owner, experiment
        with django_db_blocker.unblock():
            delete_everything()

    @pytest.fixture
    def owner(db, shared):
        return shared[0]

    @pytest.fixture
    def experiment(db, shared):
        return shared[1]

    return shared, owner, experiment
