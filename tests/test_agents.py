"""AI debaters and judges. Model APIs are played by tests/fake_llm_server.py (a test double that
speaks the OpenAI and Anthropic streaming protocols); everything else is real: PostgreSQL, Redis,
a Celery worker and daphne."""

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from debates import quotes
from debates.agents.config import AgentConfig, Budget, Usage
from debates.agents.debater import TurnContext, write_turn
from debates.agents.errors import AgentError, AgentUnavailable, BudgetExhausted
from debates.agents.llm import chat_model
from tests.fake_llm_server import Fail, FakeLLMServer, Reply
from tests.polling import wait_until
from tests.test_quotes import STORY

QUESTION = "Why does the captain open the airlock?"
ANSWERS = ["To vent a fire", "To escape the ship"]
FAST_RETRIES = {"retry_base_delay": 0.01, "retry_max_delay": 0.05}


@pytest.fixture(scope="module")
def fake_llm():
    server = FakeLLMServer(
        openai_key="sk-test-openai", anthropic_key="sk-test-anthropic", port=int(os.environ["FAKE_LLM_PORT"])
    ).start()
    yield server
    server.stop()


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-test-anthropic")


def openai_config(server, **extra):
    """The fake-openai back-end that tests/settings.py registers: the fake server, key in FAKE_OPENAI_KEY."""
    return dict(
        {"backend": "fake-openai", "model": "fake-gpt", "parameters": {"temperature": 0.3, **FAST_RETRIES}}, **extra
    )


def anthropic_config(server, **extra):
    return dict({"backend": "fake-anthropic", "model": "fake-claude", "parameters": FAST_RETRIES}, **extra)


def _stream(config, retries=None):
    model = chat_model(AgentConfig.from_dict(config))
    deltas = list(
        model.stream(
            "system words",
            "user words",
            on_retry=lambda n, error, delay: retries.append(error.code) if retries is not None else None,
        )
    )
    return model, deltas


# Back-ends, streaming through the fake server.


def test_the_openai_backend_streams_deltas_and_retries_after_a_server_error(fake_llm, keys):
    fake_llm.script([Fail(500), Reply("The fire was in the forward cabin.", chunk=5)])
    retries = []
    model, deltas = _stream(openai_config(fake_llm), retries)
    assert "".join(deltas) == "The fire was in the forward cabin." and len(deltas) == 7
    assert retries == ["http_500"] and len(fake_llm.requests) == 2
    request = fake_llm.requests[-1]
    assert request["headers"]["authorization"] == "Bearer sk-test-openai"
    assert request["body"]["stream"] is True and request["body"]["temperature"] == 0.3
    assert "retry_base_delay" not in request["body"]  # platform settings never reach the model
    assert request["body"]["messages"][0] == {"role": "system", "content": "system words"}
    assert model.budget.this_turn.output_tokens == 7  # counted by the server, from the usage chunk


def test_the_anthropic_backend_streams_with_its_headers_and_honours_rate_limits(fake_llm, keys):
    fake_llm.script([Fail(429, retry_after=0.01), Fail(529), Reply("Quoting the log: it was a fire.", chunk=4)])
    retries = []
    model, deltas = _stream(anthropic_config(fake_llm), retries)
    assert "".join(deltas) == "Quoting the log: it was a fire."
    assert retries == ["http_429", "http_529"]
    request = fake_llm.requests[-1]
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "sk-test-anthropic"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    assert request["body"]["system"] == "system words" and request["body"]["max_tokens"] > 0
    assert model.budget.this_turn.output_tokens == len(deltas)


def test_a_stream_that_breaks_off_is_retried_and_its_partial_text_dropped(fake_llm, keys):
    fake_llm.script(
        [Reply("a partial answer that never ends", chunk=3, cut_after=2), Reply("the whole answer", chunk=3)]
    )
    retries, text = [], []

    def on_retry(failures, error, delay):
        retries.append(error.code)
        text.clear()

    model = chat_model(AgentConfig.from_dict(openai_config(fake_llm)))
    for delta in model.stream("s", "u", on_retry):
        text.append(delta)
    assert "".join(text) == "the whole answer"
    # http.client either reports the missing final chunk or ends the body early: both are retried
    assert len(retries) == 1 and retries[0] in ("connection_lost", "stream_cut")


def test_it_gives_up_after_the_configured_attempts(fake_llm, keys):
    fake_llm.script([Fail(503), Fail(503), Reply("too late")])
    config = openai_config(fake_llm)
    config["parameters"]["attempts"] = 2
    with pytest.raises(AgentUnavailable, match="gave up after 2 attempts"):
        _stream(config)
    assert len(fake_llm.requests) == 2


def test_a_refused_request_is_not_retried(fake_llm, monkeypatch):
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-wrong")
    fake_llm.script([])
    with pytest.raises(AgentError) as error:
        _stream(openai_config(fake_llm))
    assert not isinstance(error.value, AgentUnavailable)
    assert error.value.code == "http_401" and len(fake_llm.requests) == 1


def test_an_unreachable_server_is_a_retryable_connection_error():
    config = {"backend": "unreachable", "model": "m", "parameters": {"attempts": 1}}
    with pytest.raises(AgentUnavailable) as error:
        _stream(config)
    assert error.value.code == "connection_error"


def test_a_missing_key_is_a_clear_error_before_any_request(fake_llm, monkeypatch):
    monkeypatch.delenv("FAKE_OPENAI_KEY", raising=False)
    fake_llm.script([])
    with pytest.raises(AgentError, match="the fake-openai back-end has no API key") as error:
        _stream(openai_config(fake_llm))
    assert error.value.code == "missing_api_key" and fake_llm.requests == []


def test_the_token_budget_caps_the_request_and_stops_a_stream_that_runs_over(fake_llm, keys):
    config = AgentConfig.from_dict(openai_config(fake_llm, token_budget=60))
    fake_llm.script([Reply("word " * 200, chunk=5)])  # a server that ignores max_tokens
    model = chat_model(config, Budget(config))
    with pytest.raises(BudgetExhausted, match="60-token budget"):
        list(model.stream("s" * 40, "u" * 40))
    assert fake_llm.requests[0]["body"]["max_tokens"] == 60 - 20
    spent = Budget(config, Usage(40, 20))
    fake_llm.script([])
    with pytest.raises(BudgetExhausted, match="token budget of 60 for this debate is spent"):
        list(chat_model(config, spent).stream("s", "u"))
    assert fake_llm.requests == []


def test_a_cost_budget_stops_the_seat_once_spent(fake_llm, keys):
    config = AgentConfig.from_dict(openai_config(fake_llm, cost_budget_usd=0.01, usd_per_1k_input=1.0))
    with pytest.raises(BudgetExhausted, match=r"cost budget of \$0.01"):
        list(chat_model(config, Budget(config, Usage(input_tokens=10, output_tokens=0))).stream("s", "u"))


@pytest.mark.parametrize(
    "config, message",
    [
        ({"backend": "gpt"}, "backend must be one of the back-ends this server offers: scripted, fake-openai"),
        ({"backend": "fake-openai"}, "needs a model name"),
        ({"backend": "fake-anthropic", "model": "claude-opus"}, "offers the models fake-claude, fake-claude-large"),
        ({"backend": "scripted", "best_of_n": 40}, "best_of_n"),
        ({"backend": "scripted", "temperature": 1}, "unknown agent settings: temperature"),
        (
            {"backend": "fake-openai", "model": "m", "parameters": {"base_url": "http://x"}},
            "parameters may not set base_url",
        ),
        ({"backend": "fake-openai", "model": "m", "api_key_env": "SECRET_KEY"}, "unknown agent settings: api_key_env"),
        ({"backend": "scripted", "prompts": {"debater_turn": "Say $nonsense"}}, "uses $nonsense"),
        ({"backend": "scripted", "prompts": {"opening": "hi"}}, "unknown prompt 'opening'"),
    ],
)
def test_bad_agent_settings_get_clear_errors(config, message):
    with pytest.raises(AgentError, match=re.escape(message)):
        AgentConfig.from_dict(config)


# The scripted debater.


def context(answer=0, round_number=1, char_limit=600, quote_chars=200, transcript="", already_quoted=()):
    return TurnContext(
        seat="A",
        question=QUESTION,
        answers=ANSWERS,
        my_answer=ANSWERS[answer],
        opponent_answer=ANSWERS[1 - answer],
        passage=STORY,
        transcript=transcript,
        round=round_number,
        char_limit=char_limit,
        quote_chars=quote_chars,
        already_quoted=list(already_quoted),
    )


def scripted_turn(ctx, **extra):
    config = AgentConfig.from_dict(dict({"backend": "scripted", "token_delay": 0}, **extra))
    return write_turn(config, ctx, Budget(config))


def test_the_scripted_debater_quotes_the_sentences_that_support_its_answer():
    result = scripted_turn(context(answer=0))
    _, found = quotes.check_speech(result.text, STORY, per_turn=200)
    assert found and all(q.status == quotes.VERIFIED for q in found)
    assert "vent the fire" in found[0].text  # the best BM25 sentence for "airlock ... vent a fire"
    assert '"To vent a fire"' in result.text
    other = scripted_turn(context(answer=1))
    assert '"To escape the ship"' in other.text and other.text != result.text


def test_the_scripted_debater_does_not_repeat_its_own_quotes():
    first = scripted_turn(context())
    used = [q.text for q in quotes.check_speech(first.text, STORY)[1]]
    second = scripted_turn(context(round_number=2, already_quoted=used))
    again = [q.text for q in quotes.check_speech(second.text, STORY)[1]]
    assert again and not set(again) & set(used)
    assert second.text.startswith("My opponent argues for")


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    char_limit=st.integers(60, 900),
    quote_chars=st.one_of(st.none(), st.integers(0, 400)),
    answer=st.sampled_from([0, 1]),
    round_number=st.integers(1, 4),
)
def test_scripted_speeches_stay_within_the_limits_and_every_quote_verifies(
    char_limit, quote_chars, answer, round_number
):
    result = scripted_turn(context(answer, round_number, char_limit, quote_chars))
    assert 0 < len(result.text) <= char_limit
    _, found = quotes.check_speech(result.text, STORY, per_turn=quote_chars)
    assert all(q.status == quotes.VERIFIED for q in found)


def test_scripted_best_of_n_keeps_every_candidate_and_picks_the_best_supported():
    result = scripted_turn(context(), best_of_n=4)
    payload = result.payload()
    assert len(payload["candidates"]) == 4 and len({c["text"] for c in payload["candidates"]}) > 1
    scores = payload["agent"]["preference"]["scores"]
    assert payload["chosen"] == scores.index(max(scores))
    assert result.text == payload["candidates"][payload["chosen"]]["text"]


def test_the_scripted_debater_refuses_a_question_without_a_passage():
    ctx = context()
    ctx.passage = ""
    with pytest.raises(AgentError, match="no hidden passage"):
        scripted_turn(ctx)


# AI turns in a debate (database).


@pytest.fixture
def ai_debate(make_user):
    """A live debate: seat A is an AI (set per test), B is bob, judge judy. Rounds: sequential
    (A first), judge feedback, sequential."""
    from debates import services
    from debates.models import Question
    from debates.protocol import Protocol

    question = Question.objects.create(
        text=QUESTION,
        answers=ANSWERS,
        correct_index=0,
        hidden_material=STORY,
        public_material="A story about a spaceship.",
    )
    bob, judy = make_user("bob", "debater"), make_user("judy", "judge")
    protocol = Protocol(
        rounds=("sequential", "judge_feedback", "sequential"),
        speaking_order=("A", "B"),
        char_limit=500,
        quote_chars_per_turn=150,
    )
    debate = services.create_debate(
        question, protocol, {"A": (None, 0), "B": (bob, 1)}, judge=judy, answer_order=[1, 0]
    )

    def with_agent(agent):
        debate.participants.filter(seat="A").update(agent=agent)
        services.start_debate(debate.pk)
        return debate

    return with_agent


def test_run_ai_turn_plays_once_however_often_it_runs(ai_debate):
    from debates.tasks import run_ai_turn

    debate = ai_debate({"backend": "scripted", "token_delay": 0})
    assert run_ai_turn(debate.pk, "A", 0) == "played"
    assert run_ai_turn(debate.pk, "A", 0) == "already_played"
    assert run_ai_turn(debate.pk, "B", 0) == "not_an_ai_seat"
    assert run_ai_turn(debate.pk, "A", 2) == "not_expected"
    turn = debate.turns.get()
    assert (turn.seat, turn.kind, turn.client_id, turn.author) == ("A", "speech", "ai-0-A", None)
    assert turn.payload["quotes"] and all(q["status"] == "verified" for q in turn.payload["quotes"])
    assert turn.payload["agent"]["backend"] == "scripted" and turn.payload["agent"]["usage"]["output_tokens"] > 0
    assert debate.events.filter(kind="speech").count() == 1


def test_an_agent_turn_goes_through_the_same_checks_as_a_persons(ai_debate):
    from debates import services
    from debates.protocol import Refused

    debate = ai_debate({"backend": "scripted"})
    with pytest.raises(Refused) as refused:
        services.submit_agent_turn(debate.pk, "A", text="x" * 501, expected_round=0, client_id="ai-0-A")
    assert refused.value.code == "too_long"
    with pytest.raises(Refused) as refused:
        services.submit_agent_turn(debate.pk, "B", text="hello", expected_round=0, client_id="ai-0-B")
    assert refused.value.code == "not_ai_seat"
    turn, events = services.submit_agent_turn(debate.pk, "A", text="hi", expected_round=0, client_id="ai-0-A")
    again, none = services.submit_agent_turn(debate.pk, "A", text="hi", expected_round=0, client_id="ai-0-A")
    assert again.pk == turn.pk and events and none == []


def test_llm_best_of_n_stores_every_candidate_and_the_judge_models_choice(ai_debate, fake_llm, keys):
    from debates.agents import turns

    fake_llm.script(
        [
            Reply("First draft."),
            Reply("Second draft: <quote>vent the fire</quote>."),
            Reply("Third draft."),
            Reply('I prefer speech two. {"best": 2}'),
        ]
    )
    debate = ai_debate(openai_config(fake_llm, best_of_n=3))
    assert turns.play_turn(debate.pk, "A", 0) == "played"
    turn = debate.turns.get()
    assert [c["text"] for c in turn.payload["candidates"]] == [
        "First draft.",
        "Second draft: <quote>vent the fire</quote>.",
        "Third draft.",
    ]
    assert turn.payload["chosen"] == 1 and turn.text == "Second draft: <quote>vent the fire</quote>."
    assert turn.payload["quotes"][0]["status"] == "verified"
    preference = turn.payload["agent"]["preference"]
    assert preference["model"] == "fake-gpt" and preference["replies"] == ['I prefer speech two. {"best": 2}']
    assert "Speech 3:\nThird draft." in fake_llm.requests[3]["body"]["messages"][1]["content"]
    assert turn.payload["agent"]["prompts"]["debater_turn"].startswith("Question: $question")
    # The judge sees the chosen speech and its quotes, never the other drafts.
    from debates import snapshots
    from debates.models import Debate

    judge_state = snapshots.state_for(
        Debate.objects.get(pk=debate.pk), snapshots.viewer_for(debate, debate.participants.get(seat="judge").user)
    )
    assert "First draft" not in json.dumps(judge_state) and "candidates" not in json.dumps(judge_state)


def test_the_llm_debater_gets_its_answer_and_the_passage_and_sees_what_its_seat_may_see(ai_debate, fake_llm, keys):
    from debates.agents import turns

    fake_llm.script([Reply("Opening.")])
    debate = ai_debate(
        openai_config(
            fake_llm,
            prompts={"debater_turn": "Q=$question MINE=$my_answer THEIRS=$opponent_answer ROUND=$round\n$passage"},
        )
    )
    turns.play_turn(debate.pk, "A", 0)
    sent = fake_llm.requests[0]["body"]["messages"]
    assert sent[1]["content"] == f"Q={QUESTION} MINE=To vent a fire THEIRS=To escape the ship ROUND=1\n{STORY}"
    assert "at most 150 characters inside quotes" in sent[0]["content"]


def test_a_turn_over_the_token_budget_is_forfeited_with_a_clear_event(ai_debate, fake_llm, keys):
    from debates.agents import turns

    fake_llm.script([])
    debate = ai_debate(openai_config(fake_llm, token_budget=100))  # the story alone is more than that
    assert turns.play_turn(debate.pk, "A", 0) == "failed: budget_exhausted"
    assert fake_llm.requests == []
    turn = debate.turns.get()
    assert turn.kind == "timeout" and turn.payload["agent_error"]["code"] == "budget_exhausted"
    failed = debate.events.get(kind="ai_turn_failed")
    assert failed.data["seat"] == "A" and "token budget of 100" in failed.data["message"]
    assert list(debate.events.filter(seq__gt=failed.seq).values_list("kind", flat=True))[:1] == ["timed_out"]


def test_a_backend_that_keeps_failing_is_retried_by_the_task_then_forfeited(ai_debate, fake_llm, keys):
    from debates.agents import turns

    fake_llm.script([Fail(500)] * 8)
    config = openai_config(fake_llm)
    config["parameters"]["attempts"] = 2
    debate = ai_debate(config)
    with pytest.raises(AgentUnavailable):
        turns.play_turn(debate.pk, "A", 0)
    assert debate.turns.count() == 0  # nothing stored: the Celery task retries later
    assert turns.give_up(debate.pk, "A", 0, AgentUnavailable("http_500", "still failing")) == "failed: http_500"
    assert turns.give_up(debate.pk, "A", 0, AgentUnavailable("http_500", "still failing")) == "failed: http_500"
    assert debate.turns.filter(kind="timeout").count() == 1


def test_an_ai_seat_becoming_expected_schedules_its_turn_after_the_commit(
    make_user, django_capture_on_commit_callbacks, monkeypatch
):
    from debates import services, tasks
    from debates.models import Question
    from debates.protocol import Protocol

    scheduled = []
    monkeypatch.setattr(tasks.AITurnTask, "start", lambda task, *args, **when: scheduled.append(args))
    question = Question.objects.create(text=QUESTION, answers=ANSWERS, correct_index=0, hidden_material=STORY)
    alice, judy = make_user("alice", "debater"), make_user("judy", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("simultaneous", "sequential")), {"A": (alice, 0), "B": (None, 1)}, judge=judy
    )
    debate.participants.filter(seat="B").update(agent={"backend": "scripted"})
    with django_capture_on_commit_callbacks(execute=True):
        services.start_debate(debate.pk)
    assert scheduled == [(debate.pk, "B", 0)]
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_action(debate.pk, alice, kind="speech", text="I speak first.")
    assert scheduled == [(debate.pk, "B", 0)]  # B was already expected: not scheduled twice
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_agent_turn(debate.pk, "B", text="Me too.", expected_round=0, client_id="ai-0-B")
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_action(debate.pk, alice, kind="speech", text="Round two.")
    assert scheduled == [(debate.pk, "B", 0), (debate.pk, "B", 1)]


def test_a_task_dispatched_in_a_transaction_that_rolls_back_never_starts(
    db, django_capture_on_commit_callbacks, monkeypatch
):
    from django.db import transaction

    from debates import background, tasks

    started = []
    monkeypatch.setattr(tasks.AITurnTask, "start", lambda task, *args, **when: started.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            background.dispatch("debates.tasks.run_ai_turn", 1, "A", 0)
            raise RuntimeError("rolled back")
        background.dispatch("debates.tasks.run_ai_turn", 2, "B", 1)
        assert started == []  # not before the commit
    assert started == [(2, "B", 1)]


# AI judges.


@pytest.fixture
def finished_debate(make_user):
    from debates import services
    from debates.models import Question
    from debates.protocol import Protocol

    question = Question.objects.create(text=QUESTION, answers=ANSWERS, correct_index=0, hidden_material=STORY)
    alice, bob = make_user("alice", "debater"), make_user("bob", "debater")
    debate = services.create_debate(
        question,
        Protocol(rounds=("sequential",), speaking_order=("A", "B")),
        {"A": (alice, 0), "B": (bob, 1)},
        answer_order=[1, 0],
    )
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, alice, kind="speech", text="It says <quote>to vent the fire</quote>.")
    services.submit_action(debate.pk, bob, kind="speech", text="It says <quote>the captain fled</quote>.")
    return debate


def test_the_llm_judge_stores_its_probabilities_as_an_ai_verdict(finished_debate, fake_llm, keys):
    from judging.ai_judges import judge_debate
    from judging.models import Verdict

    fake_llm.script(
        [
            Reply("Let me think... the verified quote settles it."),
            Reply('```json\n{"probabilities": [0.2, 0.8], "reason": "A\'s quote is verified."}\n```'),
        ]
    )
    verdict = judge_debate(
        finished_debate.pk, anthropic_config(fake_llm, parameters={"temperature": 0, **FAST_RETRIES})
    )
    assert (verdict.judge_kind, verdict.ai_judge, verdict.judge, verdict.live) == (
        Verdict.AI,
        "fake-claude",
        None,
        False,
    )
    assert verdict.probabilities == [0.8, 0.2]  # shown order was [1, 0]: back to the canonical order
    assert verdict.chosen_index == 0 and verdict.correct and verdict.reason == "A's quote is verified."
    assert verdict.provenance["backend"] == "fake-anthropic" and verdict.provenance["model"] == "fake-claude"
    assert verdict.provenance["parameters"] == {"temperature": 0}
    assert verdict.provenance["prompts"]["judge_prompt"].startswith("Question: $question")
    assert len(verdict.provenance["replies"]) == 2  # asked once more after the unreadable reply
    sent = json.dumps([r["body"] for r in fake_llm.requests])
    assert '[verified quote: \\"to vent the fire\\"]' in sent and '[unverified quote: \\"the captain fled\\"]' in sent
    assert "hydroponics" not in sent and "Stardust" not in sent  # the passage never reaches the judge
    assert judge_debate(finished_debate.pk, anthropic_config(fake_llm)).pk == verdict.pk


def test_an_ai_judge_that_never_answers_in_json_stores_nothing(finished_debate, fake_llm, keys):
    from judging.ai_judges import judge_debate
    from judging.models import Verdict

    fake_llm.script([Reply("I cannot decide."), Reply('{"probabilities": [0.5, 0.5]}')])
    with pytest.raises(AgentError) as error:
        judge_debate(finished_debate.pk, openai_config(fake_llm))
    assert error.value.code == "unreadable_judgment"
    assert Verdict.objects.count() == 0


def test_the_ai_judge_runs_over_every_finished_debate_without_its_verdict(finished_debate, make_user):
    from debates import services
    from debates.models import Debate
    from judging.ai_judges import SCRIPTED_JUDGE, judge_finished_debates

    live = services.create_debate(
        finished_debate.question,
        finished_debate.get_protocol(),
        {"A": (make_user("carol"), 0), "B": (make_user("dave"), 1)},
    )
    first = judge_finished_debates({"backend": "scripted"})
    assert [v.debate_id for v in first] == [finished_debate.pk] and first[0].ai_judge == SCRIPTED_JUDGE
    assert first[0].chosen_index == 0  # only A's quote is verified
    assert judge_finished_debates({"backend": "scripted"}) == []
    assert Debate.objects.get(pk=finished_debate.pk).status == Debate.COMPLETE  # no human judge was waiting
    assert Debate.objects.get(pk=live.pk).verdicts.count() == 0


# The whole thing: a real Celery worker plays an AI-vs-AI debate while a judge watches live.


@pytest.fixture
def keyless_llm():
    """Like a self-hosted vLLM or llama.cpp server: no API key."""
    server = FakeLLMServer(port=int(os.environ["FAKE_LOCAL_LLM_PORT"])).start()
    yield server
    server.stop()


def _session_cookie(user):
    from django.test import Client

    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


def _receive_until(ws, frames, done, seconds=120):
    def received_enough():
        if done():
            return True
        try:
            frames.append(json.loads(ws.recv(timeout=1)))
        except TimeoutError:
            pass
        return done()

    wait_until(received_enough, seconds, lambda: f"the frames awaited; last frames: {frames[-5:]}", interval=0)
    return frames


@pytest.mark.slow
def test_an_ai_vs_ai_debate_streams_to_the_observer_through_a_real_celery_worker(
    transactional_db, celery_worker, daphne_server, make_user, keyless_llm
):
    """The researcher running the debate watches the AIs write; the blinded judge gets no AI frame
    at all (a person's writing is never streamed, so any would tell a seat is an AI)."""
    from websockets.sync.client import connect

    from debates import services
    from debates.models import Debate, Question
    from debates.protocol import Protocol

    question = Question.objects.create(text=QUESTION, answers=ANSWERS, correct_index=0, hidden_material=STORY)
    judy, rita = make_user("judy", "judge"), make_user("rita", "researcher")
    protocol = Protocol(
        rounds=("simultaneous", "judge_feedback", "sequential"),
        speaking_order=("A", "B"),
        char_limit=500,
        quote_chars_per_turn=150,
    )
    debate = services.create_debate(
        question, protocol, {"A": (None, 0), "B": (None, 1)}, judge=judy, answer_order=[0, 1], created_by=rita
    )
    debate.participants.filter(seat="A").update(agent={"backend": "scripted", "token_delay": 0.005})
    debate.participants.filter(seat="B").update(
        agent={  # a self-hosted OpenAI-compatible server: no key
            "backend": "fake-local",
            "model": "fake-local",
            "parameters": FAST_RETRIES,
        }
    )
    keyless_llm.script(
        [
            Reply("My opening: <quote>the captain's quick decision</quote>."),
            Fail(500),
            Reply("Rebuttal: <quote>The ship reached the station</quote> safely, so they escaped.", chunk=6),
        ]
    )

    ws_url = daphne_server.replace("http://", "ws://") + f"/ws/debates/{debate.pk}/"

    def socket_for(user):
        return connect(
            ws_url,
            additional_headers={"Cookie": f"sessionid={_session_cookie(user)}", "Origin": daphne_server},
            open_timeout=10,
        )

    with socket_for(judy) as ws, socket_for(rita) as watcher:
        frames = [json.loads(ws.recv(timeout=10))]
        seen = [json.loads(watcher.recv(timeout=10))]
        assert frames[0]["type"] == "state" and frames[0]["view"] == "judge" and seen[0]["view"] == "observer"
        services.start_debate(debate.pk)  # commits; the AI turns go to the worker

        def kinds():
            return [f.get("kind") for f in frames if f["type"] == "event"]

        _receive_until(ws, frames, lambda: "speeches_revealed" in kinds())
        ws.send(json.dumps({"type": "feedback", "probabilities": [0.5, 0.5], "comment": "Go on.", "client_id": "f1"}))
        _receive_until(ws, frames, lambda: "debate_finished" in kinds())
        _receive_until(
            watcher, seen, lambda: "debate_finished" in [f.get("kind") for f in seen if f["type"] == "event"]
        )

    debate = Debate.objects.get(pk=debate.pk)
    assert debate.status == Debate.AWAITING_VERDICT
    speeches = {(t.round_index, t.seat): t for t in debate.turns.filter(kind="speech")}
    assert set(speeches) == {(0, "A"), (0, "B"), (2, "A"), (2, "B")}, list(
        debate.turns.values("seat", "kind", "payload")
    )

    def streamed(seat, round_index):
        return "".join(
            f["delta"] for f in seen if f["type"] == "ai_token" and f["seat"] == seat and f["round"] == round_index
        )

    # The blinded judge: no AI frame of any kind.
    assert not any(f["type"].startswith("ai_") for f in frames)
    # Sealed round: the observer sees that the AIs are writing, not what they write.
    assert streamed("A", 0) == "" and streamed("B", 0) == ""
    assert any(f["type"] == "ai_token" and f["round"] == 0 and f["chars"] > 0 and f["sealed"] for f in seen)
    # Sequential rounds: token by token, exactly the speech that was saved.
    assert streamed("A", 2) == speeches[(2, "A")].text
    assert streamed("B", 2) == speeches[(2, "B")].text
    # B's back-end failed once and was retried (three requests for two replies).
    assert len(keyless_llm.requests) == 3
    assert any(f["type"] == "ai_turn_retry" and f["seat"] == "B" for f in seen)
    started = [(f["seat"], f["round"]) for f in seen if f["type"] == "ai_turn_started"]
    assert sorted(started) == [("A", 0), ("A", 2), ("B", 0), ("B", 2)]
    assert [q["status"] for q in speeches[(2, "B")].payload["quotes"]] == ["verified"]
    assert all(q["status"] == "verified" for q in speeches[(2, "A")].payload["quotes"])


@pytest.mark.slow
def test_the_embedded_default_plays_ai_turns_in_a_background_thread(transactional_db, make_user, settings):
    from debates import services
    from debates.models import Debate, Question
    from debates.protocol import Protocol

    settings.RUN_TASKS_IN_PROCESS = True
    question = Question.objects.create(text=QUESTION, answers=ANSWERS, correct_index=0, hidden_material=STORY)
    debate = services.create_debate(
        question, Protocol(rounds=("sequential", "sequential")), {"A": (None, 0), "B": (None, 1)}, answer_order=[0, 1]
    )
    debate.participants.filter(seat__in=["A", "B"]).update(agent={"backend": "scripted", "token_delay": 0})
    services.start_debate(debate.pk)
    wait_until(lambda: Debate.objects.get(pk=debate.pk).status != Debate.LIVE, 60, "the AI turns to finish")
    assert Debate.objects.get(pk=debate.pk).status == Debate.AWAITING_VERDICT
    assert list(debate.turns.values_list("round_index", "seat", "client_id")) == [
        (0, "A", "ai-0-A"),
        (0, "B", "ai-0-B"),
        (1, "A", "ai-1-A"),
        (1, "B", "ai-1-B"),
    ]


def test_the_ai_judge_command_judges_finished_debates_and_reports_bad_settings(finished_debate):
    from io import StringIO

    from django.core.management import CommandError, call_command

    out = StringIO()
    call_command("ai_judge", "--backend", "scripted", stdout=out)
    assert out.getvalue().strip() == "1 new AI verdicts (1 correct)"
    assert finished_debate.verdicts.get().judge_kind == "ai"
    with pytest.raises(CommandError, match="needs a model name"):
        call_command("ai_judge", "--backend", "fake-openai")
    with pytest.raises(CommandError, match="--parameters is not valid JSON"):
        call_command("ai_judge", "--backend", "scripted", "--parameters", "{temperature")
