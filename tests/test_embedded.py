"""The embedded default (no Redis): turn timers and AI turns run in threads of the web process,
and what they publish must reach the websockets served by that process's event loop."""

import pytest

from debates import services
from debates.models import Debate, Turn
from debates.protocol import Protocol
from tests.live_clients import Browser, LiveSocket, session_for

pytestmark = pytest.mark.django_db(transaction=True)


def start_in_server(url, debate, researcher):
    debate.created_by = researcher  # a researcher starts the debates of their own space
    debate.save(update_fields=["created_by"])
    status, body, _ = Browser(url, session_for(researcher)).post(f"/debates/{debate.pk}/start/")
    assert status == 302, body[:300]


def test_the_in_process_turn_timer_reaches_connected_clients(embedded_daphne_server, make_user, question):
    alice, bob, judy = make_user("ema", "debater"), make_user("emb", "debater"), make_user("emj", "judge")
    debate = services.create_debate(
        question,
        Protocol(rounds=("sequential", "judge_feedback"), turn_seconds=2),
        {"A": (alice, 0), "B": (bob, 1)},
        judge=judy,
    )
    judge = LiveSocket(embedded_daphne_server, debate.pk, session_for(judy))
    judge.wait_for_type("state")
    start_in_server(embedded_daphne_server, debate, make_user("emr", "researcher"))
    timed_out = judge.wait_for_event("timed_out", timeout=10)
    assert timed_out["data"] == {"seat": "A", "round": 0}
    judge.wait_for_event("timed_out", timeout=10)
    assert list(Turn.objects.filter(debate=debate).values_list("seat", "kind")) == [("A", "timeout"), ("B", "timeout")]
    judge.close()


def test_in_process_ai_turns_stream_to_connected_clients(embedded_daphne_server, make_user, question):
    judy, rita = make_user("emj2", "judge"), make_user("emr2", "researcher")
    debate = services.create_debate(
        question,
        Protocol(rounds=("sequential", "judge_feedback")),
        {"A": (None, 0), "B": (None, 1)},
        judge=judy,
        created_by=rita,
    )
    debate.participants.filter(seat__in=("A", "B")).update(agent={"backend": "scripted"})
    judge = LiveSocket(embedded_daphne_server, debate.pk, session_for(judy))
    observer = LiveSocket(embedded_daphne_server, debate.pk, session_for(rita))
    judge.wait_for_type("state")
    observer.wait_for_type("state")
    start_in_server(embedded_daphne_server, debate, rita)
    for seat in ("A", "B"):
        spoken = observer.wait_for(
            lambda f, seat=seat: f["type"] == "event" and f["kind"] == "speech" and f["data"]["seat"] == seat,
            timeout=30,
        )
        assert spoken["data"]["text"]
    assert any(f["type"] == "ai_token" for f in observer.frames)
    waiting = judge.wait_for(
        lambda f: f["type"] == "event" and f["kind"] == "turn_state" and f["data"]["waiting_for"] == ["judge"],
        timeout=10,
    )
    assert waiting and Debate.objects.get(pk=debate.pk).status == Debate.LIVE
    # The judge is blinded (the default outside experiments): no frame says a seat is an AI.
    assert not any(f["type"].startswith("ai_") for f in judge.frames)
    judge.close()
    observer.close()
