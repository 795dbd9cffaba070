"""The websocket protocol of debates.consumers, in process: channels' WebsocketCommunicator drives
config.asgi's application (origin check, session middleware, routing, consumer) with no server, on
the channel layer and database the settings give: the in-memory layer and SQLite without services,
Redis and PostgreSQL under make test. The same protocol through a real daphne, Redis and Celery is
tested in test_live.py."""

import json
import time

import pytest
from asgiref.sync import async_to_sync
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from debates import services
from debates.models import Debate, DebateEvent, Turn
from tests.live_clients import session_for

# Transactional: the consumer reads and writes from the event loop's worker threads.
pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "SECRET PASSAGE"
HEADERS = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its own event loop: a layer left from another test's loop must not be reused."""
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


def run(scenario):
    """Runs an async scenario (connections, frames) to completion on one event loop."""
    return async_to_sync(scenario)()


async def connect(debate, user=None, path=None):
    headers = list(HEADERS)
    if user is not None:
        cookie = f"{settings.SESSION_COOKIE_NAME}={await _session(user)}"
        headers.append((b"cookie", cookie.encode()))
    socket = WebsocketCommunicator(application, path or f"/ws/debates/{debate.pk}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def _session(user):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(session_for)(user)


async def frame(socket, timeout=5):
    return await socket.receive_json_from(timeout=timeout)


async def frame_of_type(socket, *types, timeout=5):
    """The next frame of one of `types`, skipping presence frames (who else is online)."""
    while True:
        received = await frame(socket, timeout)
        if received["type"] in types:
            return received
        assert received["type"] == "presence", received


def db(function, *args, **kwargs):
    from channels.db import database_sync_to_async

    return database_sync_to_async(function)(*args, **kwargs)


def speech(text, client_id, **extra):
    return {"type": "speech", "text": text, "client_id": client_id, **extra}


@pytest.fixture
def seated(two_round_debate, make_user):
    """The debate's users by view: A and B debate, judy judges, rita (the researcher who created
    it) observes."""
    users = {p.seat: p.user for p in two_round_debate.participants.select_related("user")}
    researcher = make_user("rita", "researcher")
    Debate.objects.filter(pk=two_round_debate.pk).update(created_by=researcher)
    return {
        "debate": two_round_debate,
        "A": users["A"],
        "B": users["B"],
        "judge": users["judge"],
        "observer": researcher,
    }


def test_each_role_gets_the_state_its_view_allows(seated):
    debate = seated["debate"]

    async def scenario():
        states = {}
        for who in ("A", "judge", "observer"):
            socket = await connect(debate, seated[who])
            states[who] = await frame(socket)
            await socket.disconnect()
        return states

    states = run(scenario)
    assert {who: (s["type"], s["view"], s["my_seat"], s["seq"]) for who, s in states.items()} == {
        "A": ("state", "debater", "A", 0),
        "judge": ("state", "judge", "judge", 0),
        "observer": ("state", "observer", None, 0),
    }
    assert SECRET in states["A"]["hidden"]["material"] and SECRET in states["observer"]["hidden"]["material"]
    assert SECRET not in json.dumps(states["judge"])
    assert "correct_answer" not in states["judge"] and "honest_seats" not in states["judge"]
    assert states["observer"]["honest_seats"] == ["A"]


def test_strangers_and_anonymous_visitors_are_closed_with_4403(seated, make_user):
    debate = seated["debate"]
    stranger = make_user("sam")

    async def scenario():
        codes = []
        for user in (stranger, None):
            socket = await connect(debate, user)
            closed = await socket.receive_output(timeout=5)
            codes.append((closed["type"], closed.get("code")))
            await socket.disconnect()  # as the server would be told once the socket is closed
        return codes

    assert run(scenario) == [("websocket.close", 4403), ("websocket.close", 4403)]


def test_while_the_database_is_down_a_connection_is_accepted_then_closed_to_try_again_later(seated, monkeypatch):
    """Accepted before the state is read (daphne drops a handshake not accepted within 5 s, and a
    loaded server may take longer), then closed with 1013 when the database cannot answer: the
    page reconnects with backoff."""
    from django.db import OperationalError

    from debates.consumers import DebateConsumer

    def database_down(self):
        raise OperationalError("the database is restarting")

    monkeypatch.setattr(DebateConsumer, "_viewer_and_state", database_down)

    async def scenario():
        socket = await connect(seated["debate"], seated["judge"])  # asserts the socket was accepted
        closed = await socket.receive_output(timeout=5)
        await socket.disconnect()
        return closed["type"], closed.get("code")

    assert run(scenario) == ("websocket.close", 1013)


def test_a_speech_gets_its_ack_and_every_connection_its_event(seated):
    debate = seated["debate"]
    services.start_debate(debate.pk)
    start_seq = Debate.objects.get(pk=debate.pk).last_seq

    async def scenario():
        alice, judge = await connect(debate, seated["A"]), await connect(debate, seated["judge"])
        for socket in (alice, judge):
            assert (await frame(socket))["seq"] == start_seq
        await alice.send_json_to(speech("Alice opens.", "a-1"))
        ack = await frame_of_type(alice, "ack", "error")
        alice_event = await frame_of_type(alice, "event")
        judge_event = await frame_of_type(judge, "event")
        for socket in (alice, judge):
            await socket.disconnect()
        return ack, alice_event, judge_event

    ack, alice_event, judge_event = run(scenario)
    turn = Turn.objects.get(debate=debate, client_id="a-1")
    assert ack == {"type": "ack", "client_id": "a-1", "turn_id": turn.pk, "seq": start_seq}
    assert turn.seat == "A" and turn.text == "Alice opens."
    assert alice_event["seq"] == judge_event["seq"] == start_seq + 1
    # A simultaneous speech is sealed: its author learns it is in, the judge only that something happened.
    assert alice_event["kind"] == "speech_sealed" and judge_event["kind"] == "noop"


BAD_INPUT = [
    ("malformed JSON", '{"type": "speech", "text": ', "bad_json"),
    ("a JSON list", "[1, 2, 3]", "bad_message"),
    ("unknown type", json.dumps({"type": "dance", "client_id": "u-1"}), "unknown_type"),
    ("text is a number", json.dumps(speech(5, "t-1")), "bad_message"),
    ("forged seat", json.dumps(speech("I am Bob.", "t-2", seat="B")), "wrong_seat"),
    ("over the character limit", json.dumps(speech("y" * 501, "t-3")), "too_long"),
    (
        "feedback from a debater",
        json.dumps({"type": "feedback", "probabilities": [0.5, 0.5], "client_id": "t-4"}),
        "wrong_action",
    ),
]


def test_bad_input_gets_an_error_frame_stores_nothing_and_the_connection_keeps_working(seated):
    debate = seated["debate"]
    services.start_debate(debate.pk)
    start_seq = Debate.objects.get(pk=debate.pk).last_seq

    async def scenario():
        alice = await connect(debate, seated["A"])
        await frame(alice)
        answers = []
        for _, text, _ in BAD_INPUT:
            await alice.send_to(text_data=text)
            answers.append(await frame_of_type(alice, "error", "ack"))
        await alice.send_to(bytes_data=b'{"type": "ping"}')
        answers.append(await frame_of_type(alice, "error", "ack"))
        await alice.send_to(
            text_data='{"type": "speech", "text": "' + "x" * settings.DEBATELAB_MAX_MESSAGE_BYTES + '"}'
        )
        answers.append(await frame_of_type(alice, "error", "ack"))
        await alice.send_json_to({"type": "ping"})
        pong = await frame_of_type(alice, "pong")
        await alice.disconnect()
        return answers, pong

    answers, pong = run(scenario)
    expected = [code for _, _, code in BAD_INPUT] + ["bad_message", "too_large"]
    assert [(a["type"], a["code"]) for a in answers] == [("error", code) for code in expected]
    assert all(a["message"] and a["seq"] == start_seq for a in answers)
    assert answers[2]["client_id"] == "u-1"
    assert (pong["type"], pong["seq"]) == ("pong", start_seq)
    assert not Turn.objects.filter(debate=debate).exists()
    assert DebateEvent.objects.filter(debate=debate).count() == start_seq


def test_sync_replays_the_events_after_a_number_and_garbage_gets_the_whole_state(seated):
    debate = seated["debate"]
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, seated["A"], kind="speech", text="Alice opens.")
    services.submit_action(debate.pk, seated["B"], kind="speech", text="Bob opens.")
    last_seq = Debate.objects.get(pk=debate.pk).last_seq

    async def scenario():
        observer = await connect(debate, seated["observer"])
        state = await frame(observer)
        await observer.send_json_to({"type": "sync", "after": 2})
        replayed = [await frame_of_type(observer, "event") for _ in range(last_seq - 2)]
        resent = []
        for after in (last_seq + 50, "yesterday", -1):
            await observer.send_json_to({"type": "sync", "after": after})
            resent.append(await frame_of_type(observer, "state", "event"))
        await observer.disconnect()
        return state, replayed, resent

    state, replayed, resent = run(scenario)
    assert state["seq"] == last_seq
    stored = list(DebateEvent.objects.filter(debate=debate, seq__gt=2).order_by("seq").values_list("seq", "kind"))
    assert [(f["seq"], f["kind"]) for f in replayed] == stored
    assert [(f["type"], f["seq"]) for f in resent] == [("state", last_seq)] * 3


def test_a_seat_is_online_while_connected_and_its_last_departure_is_kept(seated):
    """The presence store this run has (in memory without services, Redis under make test)."""
    from debates import presence

    debate = seated["debate"]

    async def scenario():
        socket = await connect(debate, seated["judge"])
        await frame(socket)  # the state; the presence frame follows once the seat is in the store
        assert (await frame(socket))["type"] == "presence"
        online = await db(presence.online_seats, debate.pk)
        await socket.disconnect()
        return online

    before = time.time()
    assert "judge" in run(scenario)
    assert "judge" not in presence.online_seats(debate.pk)
    assert before - 1 <= presence.last_departure(debate.pk, "judge") <= time.time() + 1


@pytest.mark.parametrize(
    "consumer_path",
    ["debates.consumers.DebateConsumer", "debates.consumers.PersonalConsumer", "judging.consumers.ExperimentConsumer"],
)
def test_a_frame_to_a_browser_that_just_left_is_dropped_without_ending_the_consumer(consumer_path):
    """daphne raises when a frame is sent to a socket the browser has just closed
    (django/channels#1820); the consumer must go on to its disconnect handler."""
    from autobahn.exception import Disconnected
    from django.utils.module_loading import import_string

    async def closed_socket(message):
        raise Disconnected("Attempt to send on a closed protocol")

    consumer = import_string(consumer_path)()
    consumer.base_send = closed_socket
    consumer.sent_seq = 0  # the debate consumer's frames carry the last number sent

    async def scenario():
        await consumer.send_json({"type": "pong"})
        await consumer.send(text_data="{}")

    run(scenario)
