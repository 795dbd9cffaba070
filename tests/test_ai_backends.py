"""AI back-ends belong to the operator (issue 10, HIGH): an experiment file or a stored agent names
a back-end and a model, never an address or the environment variable of a key; back-end errors
reach researchers as fixed descriptions, never response bodies. Model APIs are played by
tests/fake_llm_server.py (a TEST DOUBLE for the paid APIs), registered as back-ends in
tests/settings.py."""

import json
import os

import pytest

from debates import experiment_spec
from debates.agents import backends
from debates.agents.config import AgentConfig
from debates.agents.errors import AgentError
from tests.fake_llm_server import Fail, FakeLLMServer
from tests.test_quotes import STORY

EXPERIMENT = """name: Secrets
dataset:
  source: demo
protocols:
  - name: debate
debaters:
  kind: ai
  backend: fake-openai
  model: fake-gpt
  parameters:
    temperature: 0.5
"""


@pytest.fixture
def internal_server():
    """Stands in for an internal address a researcher must not reach (no key configured)."""
    server = FakeLLMServer().start()
    yield server
    server.stop()


@pytest.mark.parametrize(
    "extra, line, field",
    [
        ("    base_url: http://10.0.0.1/v1\n", 12, "debaters.parameters.base_url"),
        ("    api_key_env: SECRET_KEY\n", 12, "debaters.parameters.api_key_env"),
        ("    headers: {X-Api-Key: x}\n", 12, "debaters.parameters.headers"),
        ("    api_base: http://10.0.0.1/v1\n", 12, "debaters.parameters.api_base"),
    ],
)
def test_an_experiment_file_cannot_name_an_address_or_a_key_variable(extra, line, field):
    with pytest.raises(experiment_spec.SpecError) as error:
        experiment_spec.parse(EXPERIMENT + extra)
    assert error.value.errors == [
        f"line {line}: {field}: not allowed: parameters are model settings and budgets; "
        f"the server's operator chooses addresses and keys"
    ]


def test_an_experiment_file_names_a_configured_back_end_and_an_offered_model():
    with pytest.raises(experiment_spec.SpecError) as error:
        experiment_spec.parse(
            EXPERIMENT.replace("backend: fake-openai", "backend: openai") + "  base_url: http://10.0.0.1/v1\n"
        )
    assert error.value.errors[0].startswith("line 12: debaters.base_url: unknown field")
    assert error.value.errors[1].startswith("line 8: debaters.backend: must be one of scripted, fake-openai, ")
    with pytest.raises(
        experiment_spec.SpecError,
        match=r"line 9: debaters.model: the fake-anthropic back-end offers "
        r"the models fake-claude, fake-claude-large \(got 'gpt-5'\)",
    ):
        experiment_spec.parse(EXPERIMENT.replace("fake-openai", "fake-anthropic").replace("fake-gpt", "gpt-5"))
    assert experiment_spec.parse(EXPERIMENT)["debaters"]["backend"] == "fake-openai"


def test_the_demo_experiment_still_loads():
    from pathlib import Path

    definition = experiment_spec.parse((Path(__file__).parent.parent / "examples/demo-experiment.yaml").read_text())
    assert definition["debaters"]["backend"] == "scripted"


@pytest.mark.parametrize(
    "agent",
    [
        {"backend": "openai", "model": "m", "base_url": "URL", "api_key_env": "SECRET_KEY"},
        {"backend": "fake-local", "model": "m", "parameters": {"base_url": "URL", "api_key_env": "SECRET_KEY"}},
        {"backend": "fake-local", "model": "m", "base_url": "URL"},
    ],
)
def test_a_stored_agent_that_names_an_address_sends_nothing_and_reads_no_secret(
    agent, internal_server, make_user, question, settings
):
    """The attack of the finding: Participant.agent (set by an old experiment or the admin) points
    at an internal address with api_key_env SECRET_KEY. Nothing is sent and nothing is read."""
    from debates import services
    from debates.agents import turns
    from debates.protocol import Protocol

    agent = json.loads(json.dumps(agent).replace("URL", internal_server.url + "/v1"))
    internal_server.script([])
    judy = make_user("judy", "judge")
    debate = services.create_debate(
        question, Protocol(rounds=("sequential",)), {"A": (None, 0), "B": (None, 1)}, judge=judy, answer_order=[0, 1]
    )
    debate.participants.filter(seat="A").update(agent=agent)
    services.start_debate(debate.pk)
    assert turns.play_turn(debate.pk, "A", 0).startswith("failed: ")
    assert internal_server.requests == []
    stored = json.dumps(list(debate.events.values_list("data", flat=True)))
    assert settings.SECRET_KEY not in stored and internal_server.url not in stored


def test_a_back_end_error_reaches_the_researcher_as_a_fixed_description(make_user, monkeypatch):
    from debates import services
    from debates.agents import turns
    from debates.models import Question
    from debates.protocol import Protocol

    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-test-openai")
    server = FakeLLMServer(openai_key="sk-test-openai", port=int(os.environ["FAKE_LLM_PORT"])).start()
    try:
        server.script([Fail(403)])  # its body says "scripted failure 403"
        question = Question.objects.create(text="Q?", answers=["a", "b"], correct_index=0, hidden_material=STORY)
        debate = services.create_debate(
            question,
            Protocol(rounds=("sequential",)),
            {"A": (None, 0), "B": (None, 1)},
            judge=make_user("judy", "judge"),
            answer_order=[0, 1],
        )
        debate.participants.filter(seat="A").update(agent={"backend": "fake-openai", "model": "fake-gpt"})
        services.start_debate(debate.pk)
        assert turns.play_turn(debate.pk, "A", 0) == "failed: http_403"
    finally:
        server.stop()
    failed = debate.events.get(kind="ai_turn_failed").data
    assert failed["message"] == "the model server answered HTTP 403 (the request was refused)"
    assert "scripted failure" not in json.dumps(list(debate.events.values_list("data", flat=True)))


def test_an_unreachable_back_end_is_described_without_its_address():
    from debates.agents.llm import chat_model

    config = AgentConfig.from_dict({"backend": "unreachable", "model": "m", "parameters": {"attempts": 1}})
    with pytest.raises(AgentError) as error:
        list(chat_model(config).stream("s", "u"))
    assert error.value.message == "could not reach the model server (connection refused) (gave up after 1 attempts)"


def test_a_redirect_is_not_followed(internal_server):
    """A 3xx would carry the key to wherever it points."""
    from debates.agents.streaming import post_events

    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.send_response(307)
            self.send_header("Location", internal_server.url + "/v1/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    redirecting = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=redirecting.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    internal_server.script([])
    try:
        with pytest.raises(AgentError) as error:
            list(
                post_events(
                    f"http://127.0.0.1:{redirecting.server_address[1]}/v1", {"Authorization": "Bearer k"}, {}, 5
                )
            )
    finally:
        redirecting.shutdown()
        redirecting.server_close()
    assert error.value.code == "http_307" and internal_server.requests == []


@pytest.mark.parametrize(
    "raw, message",
    [
        ([], "must be a JSON object"),
        ({"x": {"kind": "gpt"}}, "kind must be one of"),
        ({"x": {"kind": "openai-compatible"}}, "base_url must be an http(s) URL"),
        ({"x": {"kind": "openai-compatible", "base_url": "http://h/v1", "api_key_env": "A B"}}, "api_key_env must be"),
        ({"x": {"kind": "anthropic", "base_url": "http://h/v1"}}, "needs api_key_env"),
        ({"x": {"kind": "openai-compatible", "base_url": "http://h/v1", "models": []}}, "models must be"),
        ({"x": {"kind": "openai-compatible", "base_url": "http://h/v1", "headers": {}}}, "unknown settings headers"),
        ({"bad name!": {"kind": "scripted"}}, "a back-end name is"),
        ({"lab": {"kind": ["offline"]}}, "kind must be one of"),
    ],
)
def test_the_operators_back_end_list_is_checked_at_start(raw, message):
    with pytest.raises(backends.BackendConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        backends.parse(raw)


def test_the_example_back_end_list_is_valid():
    from pathlib import Path

    found = backends.parse(json.loads((Path(__file__).parent.parent / "examples/ai-backends.json").read_text()))
    assert {"scripted", "openai", "anthropic", "lab-vllm"} == set(found)
    assert found["lab-vllm"].api_key_env is None and found["openai"].allows("gpt-4o-mini")


def test_the_embedded_default_offers_the_scripted_back_end_only():
    assert list(backends.parse({})) == ["scripted"]
    assert list(backends.parse(None)) == ["scripted"]


def test_the_setting_may_name_a_file(tmp_path):
    from django.core.exceptions import ImproperlyConfigured

    from config.settings import _ai_backends

    path = tmp_path / "backends.json"
    path.write_text(json.dumps({"lab": {"kind": "openai-compatible", "base_url": "http://10.1.1.1/v1"}}))
    assert _ai_backends(str(path)) == {"lab": {"kind": "openai-compatible", "base_url": "http://10.1.1.1/v1"}}
    with pytest.raises(ImproperlyConfigured, match="not valid JSON"):
        _ai_backends("{nope")
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        _ai_backends(str(tmp_path / "missing.json"))


def test_the_admin_checks_participant_agents_like_experiment_files(db):
    from django.contrib.auth.models import User

    from debates.admin import ParticipantForm

    form = ParticipantForm(
        data={
            "seat": "A",
            "answer_index": 0,
            "alias": "",
            "agent": json.dumps(
                {"backend": "fake-local", "model": "m", "parameters": {"base_url": "http://10.0.0.1/v1"}}
            ),
        }
    )
    assert not form.is_valid() and "parameters may not set base_url" in str(form.errors["agent"])
    form = ParticipantForm(
        data={"seat": "A", "answer_index": 0, "alias": "", "agent": json.dumps({"backend": "fake-local", "model": "m"})}
    )
    assert form.is_valid(), form.errors
    assert User.objects.count() == 0  # nothing was saved by checking


# The scripted back-end was called "offline" (the word offline judging also uses): the old spellings
# still load, each with a line-numbered deprecation, and mean the new ones.
OLD_SPELLING = """name: Old spelling
dataset:
  source: demo
protocols:
  - name: debate
debaters:
  kind: ai
  backend: offline
judges:
  kind: ai
  backend: offline
  offline: stepwise
  per_debate: 2
prompts:
  offline_opening: I say "$my_answer". $evidence
"""


def test_the_old_name_of_the_scripted_back_end_loads_with_a_deprecation():
    checked = experiment_spec.check(OLD_SPELLING)
    assert (checked.definition["debaters"]["backend"], checked.definition["judges"]["backend"]) == (
        "scripted",
        "scripted",
    )
    assert checked.definition["judges"]["offline"] == "stepwise"  # offline judging keeps its name
    assert checked.definition["prompts"] == {"scripted_opening": 'I say "$my_answer". $evidence'}
    assert [d.split(":")[0:2] for d in checked.deprecations] == [
        ["line 15", " prompts.offline_opening"],
        ["line 8", " debaters.backend"],
        ["line 11", " judges.backend"],
    ]
    assert "write backend: scripted" in checked.deprecations[1]
    assert experiment_spec.parse(OLD_SPELLING) == experiment_spec.parse(
        OLD_SPELLING.replace("backend: offline", "backend: scripted").replace("offline_opening", "scripted_opening")
    )


@pytest.mark.parametrize("value", ["[offline]", "{offline: 1}"])
def test_a_back_end_that_is_not_a_name_is_still_an_error(value):
    with pytest.raises(experiment_spec.SpecError, match="line 8: debaters.backend: must be a non-empty string"):
        experiment_spec.parse(OLD_SPELLING.replace("backend: offline", f"backend: {value}", 1))


def test_the_new_name_of_the_scripted_back_end_loads_without_a_deprecation():
    checked = experiment_spec.check(
        OLD_SPELLING.replace("backend: offline", "backend: scripted").replace("offline_opening", "scripted_opening")
    )
    assert checked.deprecations == []
    assert checked.definition["debaters"]["backend"] == "scripted"


def test_seats_and_operator_settings_stored_with_the_old_name_still_work(caplog):
    config = AgentConfig.from_dict({"backend": "offline", "prompts": {"offline_rebuttal": "No. $evidence"}})
    assert (config.backend, config.kind) == ("scripted", "scripted")
    assert config.prompts == {"scripted_rebuttal": "No. $evidence"}
    found = backends.parse({"no-network": {"kind": "offline"}})
    assert found["no-network"].kind == "scripted"
    assert "kind 'offline' is deprecated" in caplog.text


def test_loading_an_old_spelling_logs_it_and_the_command_shows_it(db, django_user_model, tmp_path, caplog):
    from io import StringIO

    from django.core.management import call_command

    from tests.factories import dataset_questions

    dataset_questions("demo", 2)
    django_user_model.objects.create_user("rachel")
    path = tmp_path / "old.yaml"
    path.write_text(OLD_SPELLING)
    err = StringIO()
    call_command("load_experiment", str(path), "--owner", "rachel", stdout=StringIO(), stderr=err)
    assert f"warning: {path}:line 8: debaters.backend: 'offline' is the old name" in err.getvalue()
    assert "experiment 'Old spelling'" in caplog.text and "uses an old spelling: line 8" in caplog.text
