"""Faults injected into a running study, each on a platform of its own (tests/fault_stack.py: a
PostgreSQL cluster and a redis-server that the test kills and restarts, real daphne, Celery worker
and Celery beat processes). Every scenario ends with the debate moving again within a bound.
AI seats use the scripted debater (no network), slowed down by its token_delay."""

import json
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import ROOT
from tests.fault_stack import Stack
from tests.live_clients import LiveSocket, session_for
from tests.polling import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.services]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, django_db_blocker):
    """The stack, with this test process's database connection pointed at its PostgreSQL."""
    from django.db import connections

    platform = Stack(tmp_path_factory.mktemp("faults"))
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    _disconnect(connection)
    connection.settings_dict.update(
        NAME="debatelab", HOST="127.0.0.1", PORT=platform.postgres.port, USER="postgres", PASSWORD=""
    )
    try:
        with django_db_blocker.unblock():
            yield platform
    finally:
        _disconnect(connection)
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
        platform.close()


def _disconnect(connection) -> None:
    """Closes the connection and its pool (the pool would go on lending connections to the old database)."""
    connection.close()
    if connection.settings_dict.get("OPTIONS", {}).get("pool"):
        connection.close_pool()


def make_debate(protocol, ai_seat=None, token_delay=0.1):
    """A debate on the stack's database: people alice (A), bob (B), judy (judge) and olga (an
    observer, who sees AI writing progress; a blinded judge does not); `ai_seat` is played by the
    scripted debater instead. Returns (debate, {name: session cookie})."""
    from django.contrib.auth.models import User

    from debates import services
    from debates.models import Question

    tag = uuid.uuid4().hex[:6]
    people = {
        name: User.objects.create_user(f"{name}-{tag}", password="pass-for-tests-1")
        for name in ("alice", "bob", "judy", "olga")
    }
    question = Question.objects.create(
        text="Why does the captain open the airlock?",
        answers=["To vent a fire", "To escape the ship"],
        correct_index=0,
        hidden_material=(
            "The alarm rang in the forward cabin. Smoke filled the corridor. The "
            "captain opened the airlock to vent the fire, and the crew was saved."
        ),
    )
    debaters = {
        "A": (None if ai_seat == "A" else people["alice"], 0),
        "B": (None if ai_seat == "B" else people["bob"], 1),
    }
    debate = services.create_debate(
        question, protocol, debaters, judge=people["judy"], observers=[people["olga"]], answer_order=[0, 1]
    )
    if ai_seat:
        debate.participants.filter(seat=ai_seat).update(agent={"backend": "scripted", "token_delay": token_delay})
    return debate, {name: session_for(user) for name, user in people.items()}


def start(stack, debate) -> None:
    """Starts the debate in a process on the stack (its timers and AI turns go to the stack's broker)."""
    code = (
        "import django; django.setup()\n"
        "from debates import live, services\n"
        f"live.publish({debate.pk}, services.start_debate({debate.pk}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=stack.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-2000:]


def turns(debate, **filters):
    from debates.models import Turn

    return list(Turn.objects.filter(debate_id=debate.pk, **filters).values_list("round_index", "seat", "kind"))


def deadline_of(debate) -> float:
    from debates.models import Debate

    return Debate.objects.get(pk=debate.pk).turn_deadline.timestamp()


def expected_seats(debate):
    from debates.models import Debate

    return Debate.objects.get(pk=debate.pk).engine().expected_seats()


def sequential(**options):
    from debates.protocol import Protocol

    return Protocol(
        rounds=("sequential",) * options.pop("rounds", 1), speaking_order=("A", "B"), char_limit=500, **options
    )


# --- the worker -------------------------------------------------------------------------------


def test_an_ai_turn_is_stored_within_60_s_of_its_worker_being_killed_mid_turn(stack):
    debate, sessions = make_debate(sequential(), ai_seat="A", token_delay=0.1)
    observer = LiveSocket(stack.url, debate.pk, sessions["olga"])
    observer.wait_for_type("state")
    start(stack, debate)
    observer.wait_for(lambda f: f["type"] == "ai_token" and f["seat"] == "A" and f["chars"] > 0, timeout=30)
    killed_at = time.monotonic()
    stack.kill_worker()
    stack.start_worker()
    wait_until(lambda: turns(debate, seat="A"), 60 - (time.monotonic() - killed_at), "the AI turn is stored")
    assert turns(debate) == [(0, "A", "speech")]  # one turn, a speech: the seat was not timed out
    assert expected_seats(debate) == ("B",)
    # The streamed text of the killed attempt was withdrawn on every screen, then written again.
    observer.wait_for_event("speech", timeout=15)
    frames = [f["type"] for f in observer.frames if f.get("seat") == "A"]
    assert "ai_turn_withdrawn" in frames
    assert frames.index("ai_turn_withdrawn") < len(frames) - 1 - frames[::-1].index("ai_turn_started")
    observer.close()


def test_a_deadline_missed_while_the_worker_was_dead_is_recorded_within_15_s(stack):
    debate, _ = make_debate(sequential(turn_seconds=3))
    start(stack, debate)
    stack.kill_worker()  # it held the turn's timer
    deadline = deadline_of(debate)
    wait_until(lambda: time.time() > deadline, 10, "the deadline passes")
    stack.start_worker()
    wait_until(lambda: turns(debate), deadline + 15 - time.time(), "the timeout is recorded")
    assert turns(debate) == [(0, "A", "timeout")]
    assert expected_seats(debate) == ("B",)


# --- the database -----------------------------------------------------------------------------


def test_a_deadline_that_falls_while_postgresql_is_down_is_recorded_within_15_s(stack):
    from django.db import connection

    debate, _ = make_debate(sequential(turn_seconds=3))
    start(stack, debate)
    deadline = deadline_of(debate)
    connection.close()
    stack.postgres.stop("fast")
    try:
        wait_until(lambda: time.time() > deadline + 1, 10, "the deadline passes")
    finally:
        stack.postgres.start()
    wait_until(lambda: turns(debate), deadline + 15 - time.time(), "the timeout is recorded")
    assert turns(debate) == [(0, "A", "timeout")]
    assert expected_seats(debate) == ("B",)


# --- the web process -------------------------------------------------------------------------


def test_nothing_is_lost_or_duplicated_across_a_web_process_kill(stack):
    debate, sessions = make_debate(sequential(rounds=2))
    alice, bob = (LiveSocket(stack.url, debate.pk, sessions[name]) for name in ("alice", "bob"))
    alice.wait_for_type("state"), bob.wait_for_type("state")
    start(stack, debate)
    assert alice.act({"type": "speech", "text": "One.", "client_id": "a1"})["type"] == "ack"
    bob.wait_for_seq(alice.seq)
    bob.send({"type": "speech", "text": "Two.", "client_id": "b1"})  # in flight when the process dies
    stack.restart_web(kill=True)
    # Clients reconnect, send again what was not acknowledged, and carry on.
    seen_by_bob = bob.seq
    bob = LiveSocket(stack.url, debate.pk, sessions["bob"])
    bob.wait_for_type("state")
    assert bob.act({"type": "speech", "text": "Two.", "client_id": "b1"})["type"] == "ack"
    alice = LiveSocket(stack.url, debate.pk, sessions["alice"])
    state = alice.wait_for_type("state")
    assert [t["text"] for t in state["turns"]] == ["One.", "Two."]
    assert alice.act({"type": "speech", "text": "Three.", "client_id": "a2"})["type"] == "ack"
    bob.wait_for(lambda f: f["type"] == "event" and f["kind"] == "speech" and f["data"].get("text") == "Three.")
    assert turns(debate) == [(0, "A", "speech"), (0, "B", "speech"), (1, "A", "speech")]
    assert bob.seq > seen_by_bob
    from debates.models import DebateEvent

    seqs = list(DebateEvent.objects.filter(debate_id=debate.pk).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    alice.close(), bob.close()


# --- presence ---------------------------------------------------------------------------------


def online_seats(stack, debate, session) -> set:
    socket = LiveSocket(stack.url, debate.pk, session)
    try:
        return {s["seat"] for s in socket.wait_for_type("state")["seats"] if s["online"]}
    finally:
        socket.close()


def test_no_seat_is_online_after_everyone_has_left(stack):
    debate, sessions = make_debate(sequential())
    sockets = [LiveSocket(stack.url, debate.pk, sessions[name]) for name in ("alice", "bob")]
    for socket in sockets:
        socket.wait_for_type("state")
    assert online_seats(stack, debate, sessions["judy"]) >= {"A", "B"}
    for socket in sockets:
        socket.close()
    wait_until(lambda: online_seats(stack, debate, sessions["judy"]) <= {"judge"}, 15, "A and B go offline", interval=1)


def test_no_seat_is_online_after_the_web_process_is_killed(stack):
    debate, sessions = make_debate(sequential())
    sockets = [LiveSocket(stack.url, debate.pk, sessions[name]) for name in ("alice", "bob")]
    for socket in sockets:
        socket.wait_for_type("state")
    stack.restart_web(kill=True)
    # The dead process's entries lapse after DEBATELAB_PRESENCE_SECONDS (6 s on this stack).
    wait_until(lambda: online_seats(stack, debate, sessions["judy"]) <= {"judge"}, 20, "A and B go offline", interval=1)


# --- health -----------------------------------------------------------------------------------


def test_healthz_reports_the_workers_heartbeat(stack):
    import urllib.request

    with urllib.request.urlopen(stack.url + "/healthz", timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read())["worker"] == "ok"


# --- Redis (last: its restarts reach every process of the stack) ------------------------------


def test_the_worker_survives_a_redis_restart_while_it_holds_a_message(stack):
    debate, _ = make_debate(sequential(turn_seconds=6))
    start(stack, debate)
    wait_until(lambda: stack.log("worker.log").count("expire_turn") > 0, 10, "the worker holds the timer")
    connected = stack.log("worker.log").count("Connected to redis")
    stack.redis.stop()
    stack.redis.start()
    wait_until(
        lambda: stack.log("worker.log").count("Connected to redis") > connected, 30, "the worker reconnects to Redis"
    )
    assert stack.worker.poll() is None, stack.log("worker.log")[-3000:]
    assert "Unrecoverable error" not in stack.log("worker.log")
    wait_until(lambda: turns(debate), deadline_of(debate) + 15 - time.time(), "the timeout is recorded")
    assert turns(debate) == [(0, "A", "timeout")]


def heal(socket, seen, seconds):
    """What room.js does: ping every 2 s and sync when the pong says the debate is further on."""
    deadline = time.monotonic() + seconds
    while not seen():
        assert time.monotonic() < deadline, f"not healed within {seconds} s: {socket.frames[-5:]}"
        pong = socket.ping()
        if pong.get("latest", -1) > socket.seq:
            socket.sync(socket.seq)
        socket.drain(quiet=0.3)
        time.sleep(0.0 if seen() else 1.5)


def test_a_speech_saved_during_a_redis_outage_reaches_the_other_screens_within_15_s(stack):
    debate, sessions = make_debate(sequential(rounds=2))
    sockets = {name: LiveSocket(stack.url, debate.pk, sessions[name]) for name in ("alice", "bob", "judy")}
    for socket in sockets.values():
        socket.wait_for_type("state")
    start(stack, debate)
    for socket in sockets.values():
        socket.wait_for_event("turn_state")
    stack.redis.stop()
    try:
        answer = sockets["alice"].act({"type": "speech", "text": "Said while Redis was down.", "client_id": "a1"})
        assert answer["type"] == "ack", answer
    finally:
        stack.redis.start()
    for name in ("bob", "judy"):
        socket = sockets[name]
        heal(socket, lambda socket=socket: any(e["kind"] == "speech" for e in socket.events()), 15)
    newcomer = LiveSocket(stack.url, debate.pk, sessions["judy"])  # new connections work again
    assert newcomer.wait_for_type("state")["seq"] == sockets["judy"].seq
    bob = sockets["bob"]
    assert bob.act({"type": "speech", "text": "And the debate goes on.", "client_id": "b1"})["type"] == "ack"
    assert turns(debate) == [(0, "A", "speech"), (0, "B", "speech")]
    for socket in sockets.values():
        socket.close()
