"""AI judges run as the experiment file says: seated when the experiment starts, they give feedback
in every judge feedback round and the verdict at the end, through a real Celery worker, with the
budgets and retries of AI debaters. The LLM judge talks to tests/fake_llm_server.py, the TEST
DOUBLE for a paid model API (no network, no key)."""

import json
import os

import pytest

from debates.experiments import load_experiment, start_experiment
from debates.models import Debate, Participant, Question, Turn
from debates.protocol import JUDGE
from judging.ai_judges import SCRIPTED_JUDGE
from judging.models import Verdict
from judging.verdicts import TIE_RULE

from .fake_llm_server import Fail, FakeLLMServer, Reply
from .polling import wait_until

STORY = (
    "The storm reached the lighthouse at dusk. The keeper lit the lamp and kept it burning all night, "
    "so the fishing boats found the harbour safely. In the morning the keeper slept."
)
EXPERIMENT = """
name: AI judge {tag}
dataset:
  source: ai-judge-{tag}
protocols:
  - name: debate
    format: debate
    rounds: [sequential, judge_feedback, sequential, judge_feedback]
debaters:
  kind: ai
  backend: scripted
  parameters: {{token_delay: 0}}
judges:
{judges}
counterbalance:
  seed: 7
"""
FEEDBACK_ROUNDS = 2


@pytest.fixture
def questions(transactional_db):
    def make(tag, count=1):
        return [
            Question.objects.create(
                text=f"What did the keeper do? ({tag} {i})",
                answers=["Kept the lamp burning", "Slept all night"],
                correct_index=0,
                hidden_material=STORY,
                source=f"ai-judge-{tag}",
                external_id=f"{tag}-{i}",
            )
            for i in range(count)
        ]

    return make


@pytest.fixture
def llm():
    # The operator's back-end "fake-local" (tests/settings.py): a self-hosted server, no API key.
    server = FakeLLMServer(port=int(os.environ["FAKE_LOCAL_LLM_PORT"])).start()
    yield server
    server.stop()


def _start(make_user, tag: str, judges: str) -> list[Debate]:
    owner = make_user(f"owner-{tag}", "researcher")
    version, _ = load_experiment(EXPERIMENT.format(tag=tag, judges=judges), owner)
    return start_experiment(version.pk)


def _wait_until_complete(debates, seconds=120):
    ids = [d.pk for d in debates]

    def stuck():
        return {d.pk: (d.status, d.turns.count()) for d in Debate.objects.filter(pk__in=ids)}

    wait_until(
        lambda: not Debate.objects.filter(pk__in=ids).exclude(status=Debate.COMPLETE).exists(),
        seconds,
        lambda: f"the debates to complete: {stuck()}",
        interval=0.3,
    )


def test_a_scripted_ai_judge_is_seated_gives_feedback_and_the_verdict_through_the_worker(
    celery_worker, make_user, questions
):
    questions("offline", 2)
    debates = _start(make_user, "offline", "  kind: ai\n  backend: scripted")
    assert debates
    for debate in debates:
        seat = Participant.objects.get(debate=debate, seat=JUDGE)
        assert seat.user is None and seat.agent["backend"] == "scripted"  # seated at creation
        assert Debate.objects.get(pk=debate.pk).status != Debate.SCHEDULED  # every seat filled: started at once
    _wait_until_complete(debates)
    for debate in debates:
        feedback = list(Turn.objects.filter(debate=debate, seat=JUDGE).order_by("id"))
        assert [(t.kind, t.client_id) for t in feedback] == [("feedback", "ai-1-judge"), ("feedback", "ai-3-judge")]
        assert all(abs(sum(t.probabilities) - 1) < 1e-9 for t in feedback)
        verdict = Verdict.objects.get(debate=debate)
        assert (verdict.judge_kind, verdict.ai_judge, verdict.live, verdict.judge) == (
            Verdict.AI,
            SCRIPTED_JUDGE,
            True,
            None,
        )
        assert verdict.provenance["tie_rule"] == TIE_RULE
        assert verdict.after_turn == debate.turns.count()
        kinds = list(debate.events.order_by("seq").values_list("kind", flat=True))
        assert kinds.count("feedback") == FEEDBACK_ROUNDS and kinds[-1] == "verdict_given"


def test_an_llm_judge_retries_keeps_its_budget_and_judges_through_the_worker(celery_worker, make_user, questions, llm):
    questions("llm", 1)
    reply = json.dumps(
        {
            "probabilities": [0.3, 0.7],
            "comment": "Where does the story say so?",
            "end_debate": False,
            "reason": "Only one side quoted the story.",
        }
    )
    llm.script([Fail(500), Reply("I am not sure yet."), Reply(reply)], default=Reply(reply))
    parameters = {"retry_base_delay": 0.01, "retry_max_delay": 0.05, "token_budget": 100_000, "temperature": 0}
    judges = f"  kind: ai\n  backend: fake-local\n  model: fake-judge\n  parameters: {json.dumps(parameters)}"
    debates = _start(make_user, "llm", judges)
    _wait_until_complete(debates)
    for debate in debates:
        feedback = list(Turn.objects.filter(debate=debate, seat=JUDGE).order_by("id"))
        assert len(feedback) == FEEDBACK_ROUNDS and all(t.kind == "feedback" for t in feedback)
        assert {t.text for t in feedback} == {"Where does the story say so?"}
        shown = debate.answer_order
        assert all(t.probabilities == [[0.3, 0.7][shown.index(i)] for i in range(2)] for t in feedback)
        usage = [t.payload["agent"]["usage"] for t in feedback]
        assert all(u["input_tokens"] > 0 for u in usage)  # counted against the judge's budget
        verdict = Verdict.objects.get(debate=debate)
        assert (verdict.ai_judge, verdict.live, verdict.reason) == (
            "fake-judge",
            True,
            "Only one side quoted the story.",
        )
        assert verdict.provenance["backend"] == "fake-local" and len(verdict.provenance["replies"]) >= 1
    sent = json.dumps([r["body"] for r in llm.requests])
    assert "report your current belief" in sent and "How likely is each answer to be correct?" in sent
    assert STORY not in sent  # the judge never sees the story


def test_an_llm_judge_out_of_budget_forfeits_its_reports_and_the_debate_goes_on(
    celery_worker, make_user, questions, llm
):
    questions("budget", 1)
    llm.script([], default=Reply("{}"))
    parameters = {"token_budget": 5, "retry_base_delay": 0.01}
    judges = f"  kind: ai\n  backend: fake-local\n  model: fake-judge\n  parameters: {json.dumps(parameters)}"
    debates = _start(make_user, "budget", judges)
    wait_until(
        lambda: not Debate.objects.filter(pk__in=[d.pk for d in debates], status=Debate.LIVE).exists(),
        90,
        "every round to run",
        interval=0.3,
    )
    for debate in Debate.objects.filter(pk__in=[d.pk for d in debates]):
        assert debate.status == Debate.AWAITING_VERDICT  # every round ran; the verdict needs budget too
        feedback = list(Turn.objects.filter(debate=debate, seat=JUDGE).order_by("id"))
        assert [t.kind for t in feedback] == ["timeout"] * FEEDBACK_ROUNDS
        assert {t.payload["agent_error"]["code"] for t in feedback} == {"budget_exhausted"}
        assert not Verdict.objects.filter(debate=debate).exists()
    assert not llm.requests  # nothing was sent past the budget
