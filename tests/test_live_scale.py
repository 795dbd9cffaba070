"""The live layer as it runs at a study's size: several daphne processes behind one port
(platform/serve.py), events that reach every screen even when their announcement is lost, the
heartbeat that tells a client the debate's latest event, presence that lapses when a process dies,
and the engine state kept with the debate matching a replay of its turns."""

import os
import signal
import subprocess
import sys
import time

import pytest

from debates import presence, services
from debates.models import Debate
from tests.conftest import ROOT, _free_port, _subprocess_env, _wait_until_healthy
from tests.live_clients import LiveSocket, session_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
POLL_SECONDS = 0.5
PRESENCE_SECONDS = 3


@pytest.fixture(scope="module")
def two_process_server(django_db_setup, tmp_path_factory):
    """platform/serve.py with two daphne processes on one port; yields (url, serve process).
    Tests that kill its processes wait for serve.py to replace them."""
    env = _subprocess_env()
    env.update(DEBATELAB_LIVE_POLL_SECONDS=str(POLL_SECONDS), DEBATELAB_PRESENCE_SECONDS=str(PRESENCE_SECONDS))
    port = _free_port()
    log = open(tmp_path_factory.mktemp("serve") / "serve.log", "w")
    process = subprocess.Popen(
        [sys.executable, "platform/serve.py", "--host", "127.0.0.1", "--port", str(port), "--processes", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    _wait_until_healthy(url, process, log.name)
    yield url, process
    process.terminate()
    process.wait(timeout=20)


def daphne_children(serve: subprocess.Popen) -> list[int]:
    children = f"/proc/{serve.pid}/task/{serve.pid}/children"
    return [int(pid) for pid in open(children).read().split()]


def wait_for_replacements(serve, killed, url):
    deadline = time.monotonic() + 30
    while set(killed) & set(daphne_children(serve)) or len(daphne_children(serve)) < 2:
        assert time.monotonic() < deadline, "serve.py did not replace the killed daphne processes"
        time.sleep(0.2)
    _wait_until_healthy(url, serve, os.devnull)


def seated(debate, url):
    sessions = {p.seat: session_for(p.user) for p in debate.participants.select_related("user")}
    return {seat: LiveSocket(url, debate.pk, session) for seat, session in sessions.items()}


def speech_events(socket, count, timeout=15):
    found = []
    deadline = time.monotonic() + timeout
    while len(found) < count:
        frame = socket.wait_for(
            lambda f: f["type"] == "event" and f["kind"] in ("speech", "speeches_revealed"),
            timeout=max(0.1, deadline - time.monotonic()),
        )
        found.append(frame)
    return found


@pytest.fixture
def live_debate(two_round_debate):
    services.start_debate(two_round_debate.pk)
    return Debate.objects.get(pk=two_round_debate.pk)


def test_events_reach_every_screen_on_both_processes_and_a_killed_process_loses_nothing(
    two_process_server, live_debate
):
    url, serve = two_process_server
    # Several connections per seat, so both processes hold some of the debate's sockets.
    sockets = [s for _ in range(4) for s in seated(live_debate, url).values()]
    for s in sockets:
        s.wait_for_type("state")
    alice = next(s for s in sockets if s.frames[0]["my_seat"] == "A")
    alice.send({"type": "speech", "text": "Sealed speech of A", "client_id": "a-1"})
    alice.wait_for(lambda f: f["type"] == "ack")
    bob = next(s for s in sockets if s.frames[0]["my_seat"] == "B")
    bob.send({"type": "speech", "text": "Sealed speech of B", "client_id": "b-1"})
    bob.wait_for(lambda f: f["type"] == "ack")
    for s in sockets:
        (revealed,) = speech_events(s, 1)
        assert [x["text"] for x in revealed["data"]["speeches"]] == ["Sealed speech of A", "Sealed speech of B"]

    victim = daphne_children(serve)[0]
    os.kill(victim, signal.SIGKILL)
    wait_for_replacements(serve, [victim], url)
    judge = LiveSocket(url, live_debate.pk, session_for(live_debate.participants.get(seat="judge").user))
    state = judge.wait_for_type("state")
    assert state["seq"] == Debate.objects.get(pk=live_debate.pk).last_seq
    assert [t["kind"] for t in state["turns"]] == ["speech", "speech"]


def test_an_event_whose_announcement_was_lost_reaches_every_screen_by_the_poll(two_process_server, live_debate):
    url, _ = two_process_server
    sockets = seated(live_debate, url)
    for s in sockets.values():
        s.wait_for_type("state")
    # Saved the way a write during a Redis outage is: in the database, never announced.
    alice = live_debate.participants.get(seat="A").user
    bob = live_debate.participants.get(seat="B").user
    services.submit_action(live_debate.pk, alice, kind="speech", text="Unannounced A", client_id="u-a")
    services.submit_action(live_debate.pk, bob, kind="speech", text="Unannounced B", client_id="u-b")
    latest = Debate.objects.get(pk=live_debate.pk).last_seq
    for s in sockets.values():
        s.wait_for_seq(latest, timeout=4 * POLL_SECONDS + 5)  # LiveSocket checks the numbers stay gapless
    judge = sockets["judge"]
    judge.send({"type": "ping"})
    assert judge.wait_for_type("pong")["latest"] == latest


def test_pong_tells_a_client_the_latest_event_so_it_can_ask_for_what_it_lacks(two_process_server, live_debate):
    url, _ = two_process_server
    judge = seated(live_debate, url)["judge"]
    judge.wait_for_type("state")
    judge.send({"type": "ping"})
    assert judge.wait_for_type("pong")["latest"] == Debate.objects.get(pk=live_debate.pk).last_seq


def test_presence_lapses_when_the_process_holding_the_connection_dies(two_process_server, live_debate):
    url, serve = two_process_server
    sockets = seated(live_debate, url)
    for s in sockets.values():
        s.wait_for_type("state")
    deadline = time.monotonic() + 10
    while sorted(presence.online_seats(live_debate.pk)) != ["A", "B", "judge"]:
        assert time.monotonic() < deadline, presence.online_seats(live_debate.pk)
        time.sleep(0.1)
    killed = daphne_children(serve)
    for pid in killed:  # no process is left to say goodbye for its sockets
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + PRESENCE_SECONDS + 5
    while presence.online_seats(live_debate.pk):
        assert time.monotonic() < deadline, f"still online: {presence.online_seats(live_debate.pk)}"
        time.sleep(0.2)
    wait_for_replacements(serve, killed, url)


def test_the_engine_state_stored_with_the_debate_matches_a_replay_of_its_turns(two_round_debate):
    debate = two_round_debate
    services.start_debate(debate.pk)
    people = {p.seat: p.user for p in debate.participants.select_related("user")}
    services.submit_action(debate.pk, people["B"], kind="speech", text="B first", client_id="1")
    services.submit_action(debate.pk, people["A"], kind="speech", text="A second", client_id="2")
    services.submit_action(debate.pk, people["judge"], kind="feedback", probabilities=[0.3, 0.7], client_id="3")
    debate = Debate.objects.select_related("question").get(pk=debate.pk)
    stored = debate.engine()
    replayed = debate.replayed_engine()
    assert stored.to_state() == replayed.to_state()
    assert stored.expected_seats() == replayed.expected_seats() == ("A",)
