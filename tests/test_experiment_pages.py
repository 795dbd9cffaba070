"""Experiments in the web: the YAML/JSON form (same loader as the management command: line-numbered
errors, nothing stored on error, an edit of a started version makes a new one), the Start button,
and the live dashboard, whose websocket sends a fresh summary when a debate of the experiment moves."""

import json
from urllib.parse import urlsplit

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from debates import services
from debates.models import Debate, Experiment, ExperimentVersion, Question
from judging import dashboard
from tests.live_clients import Browser, session_for

DEFINITION = """name: Web study
dataset:
  source: web-unit
protocols:
  - name: debate
    format: debate
    rounds: [sequential, judge_feedback, sequential]
debaters:
  kind: human
  pool: [deb1, deb2]
judges:
  kind: human
  pool: [jud1, jud2]
counterbalance:
  seed: 3
target_verdicts: 4
"""
BROKEN = DEFINITION.replace("format: debate", "format: debat").replace("seed: 3", "seed: three")


@pytest.fixture
def people(make_user):
    users = {
        name: make_user(name, role)
        for name, role in (
            ("rhea", "researcher"),
            ("other", "researcher"),
            ("deb1", "debater"),
            ("deb2", "debater"),
            ("jud1", "judge"),
            ("jud2", "judge"),
        )
    }
    for i in range(2):
        Question.objects.create(
            text=f"Question {i}?",
            answers=["yes", "no"],
            correct_index=i % 2,
            hidden_material="passage",
            source="web-unit",
            external_id=str(i),
        )
    return users


@pytest.fixture
def rhea(client, people):
    client.force_login(people["rhea"])
    return client


def message_of(response):
    """The message this response added (earlier ones wait in the session until a page shows them)."""
    return [str(m) for m in get_messages(response.wsgi_request)][-1]


def create(client, text=DEFINITION):
    return client.post(reverse("experiment_new"), {"definition": text})


# The form ------------------------------------------------------------------------------------------


def test_a_researcher_creates_an_experiment_from_yaml_text(rhea):
    response = create(rhea)
    experiment = Experiment.objects.get(name="Web study")
    assert response.status_code == 302 and response["Location"] == reverse("experiment_detail", args=[experiment.pk])
    version = experiment.latest_version()
    assert (version.number, version.source_name, version.frozen_at) == (1, "web form", None)
    assert version.definition["target_verdicts"] == 4
    assert message_of(response) == "Saved Web study as version 1. Start it when you are ready."


def test_a_definition_with_an_old_spelling_saves_and_says_the_new_one(rhea):
    old = DEFINITION.replace(
        "debaters:\n  kind: human\n  pool: [deb1, deb2]", "debaters:\n  kind: ai\n  backend: offline"
    )
    response = create(rhea, old)
    assert response.status_code == 302
    assert Experiment.objects.get(name="Web study").latest_version().definition["debaters"]["backend"] == "scripted"
    assert message_of(response) == (
        "Saved, but written the old way: line 10: debaters.backend: 'offline' is the old "
        "name of the 'scripted' back-end (no model, no network): write backend: scripted."
    )


def test_json_and_uploaded_files_are_read_the_same_way(rhea):
    as_json = json.dumps({"name": "JSON study", "dataset": {"source": "web-unit"}, "protocols": [{"name": "d"}]})
    assert create(rhea, as_json).status_code == 302
    upload = SimpleUploadedFile("study.yaml", DEFINITION.encode(), content_type="text/yaml")
    response = rhea.post(reverse("experiment_new"), {"definition": "ignored: [", "file": upload})
    assert response.status_code == 302
    assert ExperimentVersion.objects.get(experiment__name="Web study").source_name == "study.yaml"
    assert Experiment.objects.filter(name="JSON study").exists()


def test_a_bad_definition_shows_line_numbered_errors_inline_and_stores_nothing(rhea):
    response = create(rhea, BROKEN)
    page = response.content.decode()
    assert response.status_code == 400
    assert "nothing was saved" in page
    assert "line 6: protocols[0].format: must be one of" in page
    assert "line 15: counterbalance.seed: must be a int" in page
    assert 'data-error-line="6"' in page and 'data-error-line="15"' in page and 'data-error-line="5"' not in page
    assert "format: debat" in page  # the text is kept for fixing
    assert not Experiment.objects.exists() and not ExperimentVersion.objects.exists()


def test_unreadable_yaml_and_non_utf8_files_are_refused(rhea):
    assert create(rhea, "name: [\n").status_code == 400
    upload = SimpleUploadedFile("study.yaml", b"\xff\xfe\x00name", content_type="text/yaml")
    response = rhea.post(reverse("experiment_new"), {"file": upload})
    assert response.status_code == 400 and "not UTF-8" in response.content.decode()
    assert not Experiment.objects.exists()


def test_editing_an_unstarted_version_changes_it_in_place(rhea):
    create(rhea)
    experiment = Experiment.objects.get()
    url = reverse("experiment_edit", args=[experiment.pk])
    assert "seed: 3" in rhea.get(url).content.decode()
    response = rhea.post(url, {"definition": DEFINITION.replace("seed: 3", "seed: 4")})
    assert response.status_code == 302
    assert message_of(response) == "Saved your changes to version 1 (not started yet)."
    assert experiment.versions.get().definition["counterbalance"]["seed"] == 4
    response = rhea.post(url, {"definition": DEFINITION.replace("seed: 3", "seed: 4")})
    assert message_of(response) == "Nothing changed: version 1 is as it was."


def test_an_edit_keeps_the_experiments_name(rhea):
    create(rhea)
    experiment = Experiment.objects.get()
    response = rhea.post(
        reverse("experiment_edit", args=[experiment.pk]),
        {"definition": DEFINITION.replace("name: Web study", "name: Renamed")},
    )
    assert response.status_code == 400
    assert "line 1: name: an edit keeps the name" in response.content.decode()
    assert list(Experiment.objects.values_list("name", flat=True)) == ["Web study"]


# Starting ------------------------------------------------------------------------------------------


def test_start_freezes_the_version_creates_its_debates_and_an_edit_then_makes_a_new_version(rhea):
    create(rhea)
    experiment = Experiment.objects.get()
    response = rhea.post(reverse("experiment_start", args=[experiment.pk]))
    assert response.status_code == 302
    assert message_of(response) == "Started version 1: 2 debates created, 2 under way."
    version = experiment.versions.get()
    assert version.frozen_at is not None
    assert Debate.objects.filter(experiment_version=version, status=Debate.LIVE).count() == 2

    response = rhea.post(reverse("experiment_start", args=[experiment.pk]))
    assert "has already started" in message_of(response)
    assert Debate.objects.count() == 2

    edit_page = rhea.get(reverse("experiment_edit", args=[experiment.pk])).content.decode()
    assert "so its definition is frozen" in edit_page and "makes version 2" in edit_page
    response = rhea.post(
        reverse("experiment_edit", args=[experiment.pk]), {"definition": DEFINITION.replace("seed: 3", "seed: 9")}
    )
    assert (
        message_of(response)
        == "Version 1 has started, so its definition is frozen: your edit is saved as a new version, version 2."
    )
    version.refresh_from_db()
    assert version.definition["counterbalance"]["seed"] == 3
    assert experiment.latest_version().number == 2 and experiment.latest_version().frozen_at is None


def test_unknown_sources_and_pool_users_are_refused_at_save(rhea):
    text = DEFINITION.replace("source: web-unit", "source: nowhere").replace("[jud1, jud2]", "[jud1, ghost]")
    response = create(rhea, text)
    page = response.content.decode()
    assert response.status_code == 400 and not Experiment.objects.exists()
    assert (
        "line 3: dataset.source: no questions with source &#x27;nowhere&#x27; (available: &#x27;web-unit&#x27;)" in page
    )
    assert "line 13: judges.pool: no such users: ghost" in page and "debaters.pool" not in page


def test_the_example_on_the_new_form_saves_and_starts(rhea):
    from judging.researcher_views import EXAMPLE

    for i in range(2):
        Question.objects.create(
            text=f"Demo {i}?",
            answers=["a", "b"],
            correct_index=0,
            hidden_material="p",
            source="debatelab-demo",
            external_id=f"d{i}",
        )
    assert "source: debatelab-demo" in rhea.get(reverse("experiment_new")).content.decode()
    assert create(rhea, EXAMPLE).status_code == 302
    experiment = Experiment.objects.get(name="My experiment")
    response = rhea.post(reverse("experiment_start", args=[experiment.pk]))
    assert message_of(response).startswith("Started version 1")
    assert Debate.objects.filter(experiment_version__experiment=experiment).count() == 4


def test_a_start_that_is_refused_says_why_and_freezes_nothing(rhea):
    create(rhea)
    Question.objects.filter(source="web-unit").delete()  # the questions went away after the save
    experiment = Experiment.objects.get()
    response = rhea.post(reverse("experiment_start", args=[experiment.pk]))
    assert "no questions with source 'web-unit'" in message_of(response)
    assert experiment.versions.get().frozen_at is None and not Debate.objects.exists()


def test_only_researchers_and_only_the_owner_use_the_forms(client, people):
    assert client.get(reverse("experiment_new")).status_code == 302  # sign in first
    client.force_login(people["jud1"])
    assert client.get(reverse("experiment_new")).status_code == 403
    assert client.post(reverse("experiment_new"), {"definition": DEFINITION}).status_code == 403
    client.force_login(people["rhea"])
    create(client)
    experiment = Experiment.objects.get()
    client.force_login(people["other"])
    assert client.get(reverse("experiment_edit", args=[experiment.pk])).status_code == 403
    assert client.post(reverse("experiment_start", args=[experiment.pk])).status_code == 403
    assert client.get(reverse("experiment_start", args=[experiment.pk])).status_code in (403, 405)
    assert experiment.versions.get().frozen_at is None


# The dashboard -------------------------------------------------------------------------------------


def test_the_summary_counts_debates_verdicts_and_progress(rhea, people):
    create(rhea)
    experiment = Experiment.objects.get()
    rhea.post(reverse("experiment_start", args=[experiment.pk]))
    debate = Debate.objects.order_by("id").first()
    play_and_judge(debate)
    summary = dashboard.summary(experiment)
    counts = {row["status"]: row["count"] for row in summary["by_status"]}
    assert counts == {"scheduled": 0, "live": 1, "awaiting_verdict": 0, "complete": 1, "abandoned": 0}
    assert summary["verdicts"] == {"total": 1, "live": 1, "offline": 0, "ai": 0, "people": 1}
    assert summary["current_version"]["progress"] == 0.25 and summary["current_version"]["target"] == 4
    assert [row["id"] for row in summary["in_progress"]] == [Debate.objects.order_by("id").last().pk]
    page = rhea.get(reverse("experiment_detail", args=[experiment.pk])).content.decode()
    assert "Live dashboard" in page and 'data-status-count="complete">1<' in page
    assert "1 / 4" in page and reverse("debate_room", args=[summary["in_progress"][0]["id"]]) in page
    # The Versions table counts the verdict too, and the live summary carries its numbers so the
    # dashboard script keeps it current (it once stayed at 0 while the dashboard said 1).
    assert summary["versions"][0] | {"frozen_at": None} == {
        "number": 1,
        "started": True,
        "frozen_at": None,
        "debates": 2,
        "complete": 1,
        "verdicts": 1,
        "target": 4,
        "progress": 0.25,
    }
    assert "<td data-version-verdicts>1</td>" in page and "<td data-version-complete>1</td>" in page


def play_and_judge(debate):
    """Both sequential rounds and the feedback between them, then the live verdict."""
    seats = {p.seat: p.user for p in debate.participants.select_related("user")}
    while not (engine := Debate.objects.get(pk=debate.pk).engine()).finished:
        seat = engine.expected_seats()[0]
        if seat == "judge":
            services.submit_action(debate.pk, seats[seat], kind="feedback", probabilities=[0.6, 0.4])
        else:
            services.submit_action(debate.pk, seats[seat], kind="speech", text=f"Speech by {seat}.")
    from judging.services import submit_verdict

    submit_verdict(debate.pk, seats["judge"], [0.7, 0.3], "Convinced.")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_dashboard_websocket_sends_a_fresh_summary_when_a_debate_moves(daphne_server, make_user):
    owner = make_user("rhea", "researcher")
    make_user("deb1", "debater"), make_user("deb2", "debater")
    judge = make_user("jud1", "judge")
    make_user("jud2", "judge")
    for i in range(2):
        Question.objects.create(
            text=f"Question {i}?",
            answers=["yes", "no"],
            correct_index=0,
            hidden_material="passage",
            source="web-unit",
            external_id=str(i),
        )
    browser = Browser(daphne_server, session_for(owner))
    status, body, _ = browser.post(reverse("experiment_new"), form={"definition": DEFINITION})
    assert status == 302, body[:300]
    experiment = Experiment.objects.get()
    assert browser.post(reverse("experiment_start", args=[experiment.pk]))[0] == 302

    socket = dashboard_socket(daphne_server, experiment.pk, session_for(owner))
    first = json.loads(socket.recv(timeout=15))
    assert first["type"] == "summary" and first["debates"] == 2
    debate = Debate.objects.order_by("id").first()
    first_seat, second_seat = debate.get_protocol().order
    assert [r["waiting_for"] for r in first["in_progress"] if r["id"] == debate.pk] == [[first_seat]]
    speaker = debate.participants.get(seat=first_seat).user
    status, body, _ = Browser(daphne_server, session_for(speaker)).post(
        reverse("api_debate_action", args=[debate.pk]),
        json_body={"type": "speech", "text": "Opening.", "client_id": "x"},
    )
    assert status == 200, body
    update = wait_for(
        socket, lambda s: any(r["id"] == debate.pk and r["waiting_for"] == [second_seat] for r in s["in_progress"])
    )
    assert update["verdicts"]["total"] == 0
    socket.close()

    for user in (make_user("nosy", "researcher"), judge):
        other = dashboard_socket(daphne_server, experiment.pk, session_for(user))
        with pytest.raises(ConnectionClosed) as closed:
            other.recv(timeout=15)
        assert closed.value.rcvd.code == 4403


def dashboard_socket(base_url, experiment_id, session):
    host = urlsplit(base_url).netloc
    return connect(
        f"ws://{host}/ws/experiments/{experiment_id}/",
        origin=base_url,
        additional_headers={"Cookie": f"sessionid={session}"},
        open_timeout=15,
        legacy=True,
    )


def wait_for(socket, wanted, frames=20):
    seen = []
    for _ in range(frames):
        summary = json.loads(socket.recv(timeout=15))
        seen.append(summary)
        if wanted(summary):
            return summary
    raise AssertionError(f"no matching summary in {seen}")


def test_an_experiment_without_a_definition_yet_shows_an_empty_dashboard(rhea, people):
    empty = Experiment.objects.create(name="Nothing yet", owner=people["rhea"])
    page = rhea.get(reverse("experiment_detail", args=[empty.pk]))
    assert page.status_code == 200
    assert "No debates in progress." in page.content.decode() and "Start version" not in page.content.decode()
    assert dashboard.summary(empty)["current_version"] is None
