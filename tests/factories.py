"""Test data (factory_boy). Debates and verdicts are made through the platform's own write paths
(debates.services, judging.services), so a made object is one the platform itself could have made.

    UserFactory(role="judge")                 a judge, password TEST_PASSWORD
    QuestionFactory()                         a two-answer question with a hidden passage
    DebateFactory(judge=judy)                 a scheduled debate: A argues answer 0, B answer 1
    FinishedDebateFactory()                   the same, played to the end (awaiting the verdict)
    VerdictFactory(probabilities=[0.8, 0.2])  the live judge's verdict on a finished debate
"""

from textwrap import dedent, indent

import factory
from django.contrib.auth.models import Group, User

from debates import services
from debates.models import DEBATER, JUDGE_ROLE, Debate, Question
from debates.protocol import JUDGE, Protocol

TEST_PASSWORD = "pass-for-tests-1"
PASSAGE = "SECRET PASSAGE: the captain opens the airlock to vent the fire."


class UserFactory(factory.django.DjangoModelFactory):
    """A user with a real (test-speed) password hash; `role` adds them to that role's group."""

    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password(TEST_PASSWORD)

    @factory.post_generation
    def role(user, create, role, **kwargs):
        if role and create:
            user.groups.add(Group.objects.get_or_create(name=role)[0])


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Question

    text = "Why does the captain open the airlock?"
    answers = factory.LazyFunction(lambda: ["To save the crew", "To escape the ship"])
    correct_index = 0
    hidden_material = PASSAGE
    public_material = "A short story about a spaceship."


def default_protocol() -> Protocol:
    return Protocol(rounds=("simultaneous", "judge_feedback", "sequential"), char_limit=500)


class DebateFactory(factory.Factory):
    """A scheduled debate made by services.create_debate: debater_a argues answer 0 (the correct
    one by default) in seat A, debater_b answer 1 in seat B, and `judge` judges (None: no judge)."""

    class Meta:
        model = Debate

    question = factory.SubFactory(QuestionFactory)
    protocol = factory.LazyFunction(default_protocol)
    debater_a = factory.SubFactory(UserFactory, role=DEBATER)
    debater_b = factory.SubFactory(UserFactory, role=DEBATER)
    judge = factory.SubFactory(UserFactory, role=JUDGE_ROLE)
    seed = 7

    @classmethod
    def _create(cls, model_class, question, protocol, debater_a, debater_b, **options):
        return services.create_debate(question, protocol, {"A": (debater_a, 0), "B": (debater_b, 1)}, **options)

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise NotImplementedError("a debate exists only once services.create_debate has saved it: use create()")


def play_to_the_end(debate: Debate) -> Debate:
    """Starts `debate` and has every expected seat act until it is over: each debater speaks, the
    judge gives even probabilities at each feedback round."""
    services.start_debate(debate.pk)
    people = {p.seat: p.user for p in debate.participants.select_related("user")}
    while not (engine := Debate.objects.get(pk=debate.pk).engine()).finished:
        seat = engine.expected_seats()[0]
        if seat == JUDGE:
            answers = len(debate.question.answers)
            services.submit_action(debate.pk, people[JUDGE], kind="feedback", probabilities=[1 / answers] * answers)
        else:
            services.submit_action(debate.pk, people[seat], kind="speech", text=f"Seat {seat} argues its answer.")
    return Debate.objects.get(pk=debate.pk)


class FinishedDebateFactory(DebateFactory):
    """A debate played to the end, awaiting its verdict."""

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return play_to_the_end(super()._create(model_class, *args, **kwargs))


class VerdictFactory(factory.Factory):
    """The live judge's verdict, given through judging.services.submit_verdict. `probabilities` are
    in the debate's display order, as the judge's form sends them."""

    class Meta:
        model = "judging.Verdict"

    debate = factory.SubFactory(FinishedDebateFactory)
    probabilities = factory.LazyAttribute(
        lambda v: [0.8] + [0.2 / (len(v.debate.question.answers) - 1)] * (len(v.debate.question.answers) - 1)
    )
    reason = "The quoted passage settles it."
    seconds_spent = 42.0

    @classmethod
    def _create(cls, model_class, debate, **fields):
        from judging.services import submit_verdict

        judge = debate.participants.get(seat=JUDGE).user
        verdict, _ = submit_verdict(debate.pk, judge, **fields)
        return verdict


def another_ai_verdict(like, ai_judge: str):
    """A verdict by another AI judge on the same debate, agreeing with `like`: a new verdict, as an
    AI judge run later adds one (the analysis caches must notice it)."""
    from judging.models import Verdict

    return Verdict.objects.create(
        debate=like.debate,
        judge_kind="ai",
        ai_judge=ai_judge,
        live=False,
        probabilities=like.probabilities,
        chosen_index=like.chosen_index,
        correct=like.correct,
        reason="late",
        after_turn=1,
        after_seq=1,
        score=like.score,
    )


def dataset_questions(source: str, count: int, **fields) -> list[Question]:
    """`count` yes/no questions of the dataset `source` (external ids "0", "1", ...), as an
    experiment file's `dataset: {source: ...}` finds them. A field given as a function gets the
    question's index."""
    defaults = {
        "text": lambda i: f"Question {i}?",
        "answers": ["yes", "no"],
        "correct_index": 0,
        "hidden_material": "passage",
    }
    made = []
    for i in range(count):
        values = {name: value(i) if callable(value) else value for name, value in {**defaults, **fields}.items()}
        made.append(Question.objects.create(source=source, external_id=str(i), **values))
    return made


def study_file(name: str, source: str, study: str, pool: tuple[str, ...] = (), judges: str = "") -> str:
    """A crowd study's experiment file on `source`'s questions: a sequential debate between the
    human debaters in `pool`, or direct judging without one; human judges, with the extra lines
    `judges`; and the `study:` section `study`. `judges` and `study` are written as at the top of
    their section (they are indented here)."""
    if pool:
        protocol = "  - name: debate\n    format: debate\n    rounds: [sequential]\n"
        protocol += f"debaters:\n  kind: human\n  pool: [{', '.join(pool)}]\n"
    else:
        protocol = "  - name: direct\n    format: direct\n"
    return (
        f"name: {name}\ndataset:\n  source: {source}\nprotocols:\n{protocol}judges:\n  kind: human\n"
        + indent(dedent(judges), "  ")
        + "study:\n"
        + indent(dedent(study), "  ")
    )


def started_study(owner, definition: str):
    """The experiment `definition` loaded for `owner` and started (its debates created)."""
    from debates.experiments import load_experiment, start_experiment

    version, _ = load_experiment(definition, owner)
    start_experiment(version.pk)
    return version.experiment
