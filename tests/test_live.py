"""Live debates through a real daphne server with real websocket clients: a whole debate, sequence
numbers, reconnects and catch-up, idempotent retries, presence, who may connect, bad input, and
turn time limits acted on by a real Celery worker or by the in-process timer."""

import json
import math
import time
from datetime import datetime

import pytest
from websockets.exceptions import InvalidStatus

from debates import presence, services
from debates.models import Debate, DebateEvent, Turn
from debates.protocol import Protocol
from judging.models import Verdict
from tests.live_clients import Browser, LiveSocket, session_for
from tests.polling import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class Room:
    """A debate on the live server and its people, each with a real session."""

    def __init__(self, url, debate, researcher):
        self.url = url
        self.debate = debate
        self.users = {p.seat: p.user for p in debate.participants.select_related("user")}
        self.sessions = {seat: session_for(user) for seat, user in self.users.items()}
        self.researcher_session = session_for(researcher)
        debate.created_by = researcher  # the researcher runs this debate (it is in their space)
        debate.save(update_fields=["created_by"])

    def connect(self, seat, **kwargs):
        return LiveSocket(self.url, self.debate.pk, self.sessions[seat], **kwargs)

    def browser(self, seat):
        return Browser(self.url, self.sessions[seat])

    def start(self):
        status, body, headers = Browser(self.url, self.researcher_session).post(f"/debates/{self.debate.pk}/start/")
        assert status == 302, body[:500]
        assert Debate.objects.get(pk=self.debate.pk).status == Debate.LIVE

    @property
    def last_seq(self):
        return Debate.objects.get(pk=self.debate.pk).last_seq

    def shown(self, canonical):
        return [canonical[i] for i in Debate.objects.get(pk=self.debate.pk).shown_answer_order()]


@pytest.fixture
def room(daphne_server, two_round_debate, make_user):
    return Room(daphne_server, two_round_debate, make_user("rita", "researcher"))


def stored():
    return Turn.objects.count(), DebateEvent.objects.count(), Verdict.objects.count()


def speech(text, client_id, **extra):
    return {"type": "speech", "text": text, "client_id": client_id, **extra}


def play_first_round(room, sockets):
    """Both debaters speak in the simultaneous round; returns once everybody has seen the reveal."""
    assert room_ack(sockets["A"], speech("Alice opens.", "a-1", private_note="alice private"))
    assert room_ack(sockets["B"], speech("Bob opens.", "b-1", private_note="bob private"))
    for socket in sockets.values():
        socket.wait_for_seq(room.last_seq)


def room_ack(socket, message):
    answer = socket.act(message)
    assert answer["type"] == "ack", answer
    return answer


# A whole debate ------------------------------------------------------------------------------------


def test_two_debaters_and_a_judge_play_a_whole_debate_over_websockets_and_the_verdict_is_stored(room):
    sockets = {seat: room.connect(seat) for seat in ("A", "B", "judge")}
    for seat, socket in sockets.items():
        state = socket.wait_for_type("state")
        assert state["my_seat"] == seat and state["status"] == "scheduled"
    room.start()
    for socket in sockets.values():
        assert socket.wait_for_event("debate_started")
        assert socket.wait_for_event("turn_state")["data"]["waiting_for"] == ["A", "B"]

    play_first_round(room, sockets)
    revealed = [f for f in sockets["judge"].events() if f["kind"] == "speeches_revealed"][0]
    assert [(s["seat"], s["text"]) for s in revealed["data"]["speeches"]] == [
        ("A", "Alice opens."),
        ("B", "Bob opens."),
    ]
    assert room_ack(
        sockets["judge"], {"type": "feedback", "probabilities": [0.6, 0.4], "comment": "Go on.", "client_id": "j-1"}
    )
    assert room_ack(sockets["A"], speech("Alice closes.", "a-2"))
    assert room_ack(sockets["B"], speech("Bob closes.", "b-2"))
    for socket in sockets.values():
        assert socket.wait_for_event("debate_finished")["data"] == {"reason": "all_rounds_done"}
        assert socket.wait_for_event("turn_state")["data"]["status"] == "awaiting_verdict"

    debate = Debate.objects.get(pk=room.debate.pk)
    assert debate.status == Debate.AWAITING_VERDICT
    assert list(debate.turns.values_list("seat", "kind", "text")) == [
        ("A", "speech", "Alice opens."),
        ("B", "speech", "Bob opens."),
        ("judge", "feedback", "Go on."),
        ("A", "speech", "Alice closes."),
        ("B", "speech", "Bob closes."),
    ]
    assert debate.turns.get(client_id="j-1").probabilities == pytest.approx(
        [0.6, 0.4] if debate.shown_answer_order() == [0, 1] else [0.4, 0.6]
    )

    # The judge believes the first answer shown at 70%.
    status, body, headers = room.browser("judge").post(
        f"/debates/{debate.pk}/verdict/",
        form={"p0": "70", "p1": "30", "reason": "Alice quoted the log.", "seconds_spent": "95", "client_id": "v-1"},
    )
    assert status == 302, body[:1000]
    verdict = Verdict.objects.get(debate=debate)
    canonical = [0.0, 0.0]
    canonical[debate.shown_answer_order()[0]], canonical[debate.shown_answer_order()[1]] = 0.7, 0.3
    assert verdict.judge == room.users["judge"] and verdict.probabilities == pytest.approx(canonical)
    assert verdict.reason == "Alice quoted the log." and verdict.seconds_spent == 95
    assert verdict.score == pytest.approx(math.log2(canonical[debate.question.correct_index]))
    assert verdict.after_turn == 5
    assert Debate.objects.get(pk=debate.pk).status == Debate.COMPLETE
    for socket in sockets.values():
        assert socket.wait_for_event("verdict_given")
        assert socket.seq == room.last_seq
        assert [f["seq"] for f in socket.events()] == list(range(1, room.last_seq + 1))
        socket.close()


def test_every_frame_on_a_connection_carries_the_next_sequence_number(room):
    """LiveSocket checks each frame as it arrives; here every kind of frame goes past it."""
    room.start()
    judge = room.connect("judge")
    state = judge.wait_for_type("state")
    assert state["seq"] == room.last_seq
    alice = room.connect("A")
    assert judge.wait_for_type("presence")["seq"] == state["seq"]
    assert judge.ping()["seq"] == state["seq"]
    judge.send("not json")
    assert judge.wait_for_type("error")["seq"] == state["seq"]
    room_ack(alice, speech("Alice opens.", "a-1"))
    judge.wait_for_seq(room.last_seq)
    assert [f["seq"] for f in judge.events()] == list(range(state["seq"] + 1, room.last_seq + 1))
    assert judge.ping()["seq"] == room.last_seq
    for socket in (judge, alice):
        socket.close()


def test_a_reconnecting_client_gets_the_full_state_then_only_newer_events(room):
    room.start()
    sockets = {seat: room.connect(seat) for seat in ("A", "B", "judge")}
    play_first_round(room, sockets)
    room_ack(sockets["judge"], {"type": "feedback", "probabilities": [0.5, 0.5], "client_id": "j-1"})
    sockets.pop("judge").close()
    seq_when_away = room.last_seq
    room_ack(sockets["A"], speech("Alice speaks while the judge is away.", "a-2"))

    judge = room.connect("judge")
    state = judge.recv()
    assert state["type"] == "state" and state["seq"] == room.last_seq > seq_when_away
    assert [(t["seat"], t.get("text")) for t in state["turns"]] == [
        ("A", "Alice opens."),
        ("B", "Bob opens."),
        ("judge", ""),
        ("A", "Alice speaks while the judge is away."),
    ]
    assert state["waiting_for"] == ["B"] and state["round"] == 2
    room_ack(sockets["B"], speech("Bob closes.", "b-2"))
    judge.wait_for_event("debate_finished")
    judge.wait_for_seq(room.last_seq)
    assert [f["seq"] for f in judge.events()] == list(range(state["seq"] + 1, room.last_seq + 1))
    for socket in (*sockets.values(), judge):
        socket.close()


def test_a_client_that_asks_for_a_sync_catches_up(room):
    room.start()
    sockets = {seat: room.connect(seat) for seat in ("A", "B")}
    play_first_round(room, sockets)
    observer = room.connect("judge")
    state = observer.wait_for_type("state")
    observer.drain()
    observer.sync(2)
    observer.wait_for_seq(state["seq"])
    replayed = observer.events()
    assert [f["seq"] for f in replayed] == list(range(3, state["seq"] + 1))
    stored = DebateEvent.objects.filter(debate=room.debate, seq__gt=2).values_list("kind", flat=True)
    # The judge is not told that a simultaneous speech is in: that event reaches it as a noop.
    assert ["noop" if kind == "speech_sealed" else kind for kind in stored] == [f["kind"] for f in replayed]
    # Asking for events it cannot have seen, or garbage, gets the whole state again.
    for after in (state["seq"] + 50, "yesterday", -1):
        observer.sync(after)
        assert observer.wait_for_type("state")["seq"] == state["seq"]
    # The HTTP twin answers the same question.
    events = room.browser("judge").get_json(f"/api/debates/{room.debate.pk}/state/?after=2")["events"]
    assert [e["seq"] for e in events] == list(range(3, state["seq"] + 1))
    for socket in (*sockets.values(), observer):
        socket.close()


def test_a_retry_after_a_dropped_connection_never_creates_a_second_turn(room):
    room.start()
    alice = room.connect("A")
    alice.wait_for_type("state")
    alice.send(speech("Alice opens.", "retry-me"))
    alice.close()  # dropped before the answer arrived
    wait_until(lambda: Turn.objects.filter(client_id="retry-me").exists(), 15, "the first try to be stored")
    events_before = DebateEvent.objects.count()

    again = room.connect("A")
    answer = room_ack(again, speech("Alice opens.", "retry-me"))
    assert answer["turn_id"] == Turn.objects.get(client_id="retry-me").pk
    answer = room_ack(again, speech("Alice opens.", "retry-me"))  # and once more on the same connection
    assert answer["turn_id"] == Turn.objects.get(client_id="retry-me").pk
    assert Turn.objects.filter(debate=room.debate).count() == 1
    assert DebateEvent.objects.count() == events_before
    again.close()


def test_presence_frames_say_who_is_online(room):
    judge = room.connect("judge")
    judge.wait_for_type("state")
    assert judge.wait_for_type("presence")["seats"] == ["judge"]
    alice = room.connect("A")
    assert sorted(judge.wait_for_type("presence")["seats"]) == ["A", "judge"]
    alice.wait_for_type("state")
    assert any(s["seat"] == "A" and s["online"] for s in room.connect("B").recv()["seats"])
    assert sorted(judge.wait_for_type("presence")["seats"]) == ["A", "B", "judge"]
    alice.close()
    assert sorted(judge.wait_for(lambda f: f["type"] == "presence" and "A" not in f["seats"])["seats"]) == [
        "B",
        "judge",
    ]
    assert "A" not in presence.online_seats(room.debate.pk)
    # The departure is kept: a judge's timeout counts from it (judging.crowd.free_dropped_seats).
    left = presence.last_departure(room.debate.pk, "A")
    assert left is not None and abs(time.time() - left) < 30
    closed_at = time.time()
    judge.close()
    wait_until(
        lambda: (presence.last_departure(room.debate.pk, "judge") or 0) >= closed_at - 1,
        message="the judge's departure to be kept",
    )


# Who may connect -----------------------------------------------------------------------------------


def test_a_connection_without_a_session_is_refused(room):
    anonymous = LiveSocket(room.url, room.debate.pk)
    assert anonymous.close_code() == 4403
    forged = LiveSocket(room.url, room.debate.pk, session="not-a-real-session-key")
    assert forged.close_code() == 4403


def test_a_connection_from_a_foreign_origin_is_refused(room):
    with pytest.raises(InvalidStatus) as refused:
        room.connect("A", origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_a_user_with_no_seat_is_refused_with_close_code_4403(room, make_user):
    outsider = LiveSocket(room.url, room.debate.pk, session_for(make_user("outsider", "debater")))
    assert outsider.close_code() == 4403
    missing = LiveSocket(room.url, room.debate.pk + 1000, room.sessions["A"])
    assert missing.close_code() == 4403


def test_a_researcher_without_a_seat_watches_as_an_observer(room):
    observer = LiveSocket(room.url, room.debate.pk, room.researcher_session)
    state = observer.wait_for_type("state")
    assert state["view"] == "observer" and state["my_seat"] is None
    observer.close()


# Bad input -----------------------------------------------------------------------------------------


def bad_messages(max_bytes):
    """(what it is, frame to send, error code expected)."""
    return [
        ("malformed JSON", '{"type": "speech", "text": ', "bad_json"),
        ("oversized frame", '{"type": "speech", "text": "' + "x" * max_bytes + '"}', "too_large"),
        ("binary frame", b'{"type": "ping"}', "bad_message"),
        ("a JSON list", "[1, 2, 3]", "bad_message"),
        ("a JSON string", '"speech"', "bad_message"),
        ("unknown type", {"type": "dance", "client_id": "u-1"}, "unknown_type"),
        ("missing type", {"text": "hello"}, "unknown_type"),
        ("type is a list", {"type": ["speech"]}, "unknown_type"),
        ("text is a number", speech(5, "t-1"), "bad_message"),
        ("client_id is a number", {"type": "speech", "text": "x", "client_id": 7}, "bad_message"),
        ("private_note is a list", speech("x", "t-2", private_note=["a"]), "bad_message"),
        ("seat is a number", speech("x", "t-3", seat=1), "bad_message"),
        ("client_id too long", speech("x", "c" * 65), "bad_client_id"),
        ("speech over the character limit", speech("y" * 501, "t-4"), "too_long"),
        ("empty speech", speech("   ", "t-5"), "empty_speech"),
        ("forged seat", speech("I am Bob.", "t-6", seat="B"), "wrong_seat"),
        ("NUL character", speech("nul\x00byte", "t-8"), "bad_text"),
        ("lone surrogate", speech("x", "t-9", private_note="broken \ud800"), "bad_text"),
        (
            "feedback from a debater",
            {"type": "feedback", "probabilities": [0.5, 0.5], "client_id": "t-7"},
            "wrong_action",
        ),
    ]


def test_bad_messages_get_an_error_frame_store_nothing_and_the_connection_keeps_working(room, settings):
    room.start()
    alice = room.connect("A")
    alice.wait_for_type("state")
    for name, message, code in bad_messages(settings.DEBATELAB_MAX_MESSAGE_BYTES):
        before = stored()
        alice.send(message)
        error = alice.wait_for(lambda f: f["type"] in ("error", "ack"))
        assert (error["type"], error["code"]) == ("error", code), name
        assert error["message"], name
        assert stored() == before, f"{name} stored something"
        assert alice.ping()["type"] == "pong", name
    assert room_ack(alice, speech("Alice opens at last.", "a-1"))
    # Out of turn: a second speech in the same simultaneous round.
    before = stored()
    error = alice.act(speech("And another thing.", "a-2"))
    assert (error["type"], error["code"]) == ("error", "not_your_turn")
    assert stored() == before
    alice.close()


def test_the_judge_gets_an_error_frame_for_out_of_turn_and_malformed_feedback(room):
    room.start()
    sockets = {seat: room.connect(seat) for seat in ("A", "B", "judge")}
    judge = sockets["judge"]
    before = stored()
    answer = judge.act({"type": "feedback", "probabilities": [0.7, 0.3], "client_id": "early"})
    assert answer["code"] == "not_your_turn" and stored() == before
    play_first_round(room, sockets)
    before = stored()
    for probabilities in (["0.7", "0.3"], [0.7, 0.7], [0.7], "0.7,0.3", None):
        answer = judge.act({"type": "feedback", "probabilities": probabilities, "client_id": "bad-p"})
        assert answer["code"] == "bad_probabilities", probabilities
        assert stored() == before
    before = stored()
    answer = judge.act({"type": "speech", "text": "I speak too", "client_id": "j-speech"})
    assert answer["code"] == "wrong_action" and stored() == before
    assert room_ack(judge, {"type": "feedback", "probabilities": [0.7, 0.3], "client_id": "good"})
    for socket in sockets.values():
        socket.close()


# Turn time limits ----------------------------------------------------------------------------------


@pytest.fixture
def timed_room(daphne_server, make_user, question):
    alice, bob, judy = make_user("tia", "debater"), make_user("tom", "debater"), make_user("tess", "judge")
    protocol = Protocol(rounds=("sequential", "judge_feedback"), turn_seconds=2)
    debate = services.create_debate(
        question, protocol, {"A": (alice, 0), "B": (bob, 1)}, judge=judy, answer_order=[0, 1]
    )
    return Room(daphne_server, debate, make_user("rita", "researcher"))


def test_a_celery_worker_times_out_a_silent_debater_and_clients_see_it(timed_room, celery_worker):
    room = timed_room
    judge = room.connect("judge")
    judge.wait_for_type("state")
    alice = room.connect("A")
    alice.wait_for_type("state")
    log_start = celery_worker.log_size()
    room.start()  # daphne schedules A's deadline as a Celery task with an eta
    room_ack(alice, speech("Alice speaks in time.", "a-1"))  # and now B's
    b_deadline = judge.wait_for(
        lambda f: f["type"] == "event" and f["kind"] == "turn_state" and f["data"]["waiting_for"] == ["B"]
    )["data"]["deadline"]
    timed_out = judge.wait_for_event("timed_out", timeout=20)
    assert timed_out["data"] == {"seat": "B", "round": 0}
    b_timeout = Turn.objects.get(debate=room.debate, seat="B")
    assert b_timeout.kind == "timeout" and b_timeout.created_at >= datetime.fromisoformat(b_deadline)
    turn_state = judge.wait_for_event("turn_state")
    assert turn_state["data"]["waiting_for"] == ["judge"] and turn_state["data"]["deadline"] is None
    assert list(Turn.objects.filter(debate=room.debate).values_list("seat", "kind")) == [
        ("A", "speech"),
        ("B", "timeout"),
    ]

    # The first deadline's task fires too (A had spoken in time), and must do nothing more.
    def every_deadline_task_ran():
        received = celery_worker.received("debates.tasks.expire_turn", since=log_start)
        results = celery_worker.results("debates.tasks.expire_turn", since=log_start)
        return len(received) >= 2 and set(received) <= set(results) and results

    results = wait_until(every_deadline_task_ran, 20, "both deadlines' tasks to run")
    assert "0" in results.values()  # A's task found nothing to time out: 0 events
    assert Turn.objects.filter(debate=room.debate).count() == 2
    for socket in (judge, alice):
        socket.close()


@pytest.mark.django_db(transaction=True)
def test_without_a_broker_the_in_process_timer_times_out_a_silent_turn(settings, make_user, question):
    settings.RUN_TASKS_IN_PROCESS = True
    alice, bob = make_user("ida", "debater"), make_user("ian", "debater")
    protocol = Protocol(rounds=("simultaneous", "judge_feedback"), turn_seconds=2)
    debate = services.create_debate(
        question, protocol, {"A": (alice, 0), "B": (bob, 1)}, judge=make_user("jo", "judge")
    )
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, alice, kind="speech", text="Alice speaks in time.")
    wait_until(lambda: Turn.objects.filter(debate=debate, kind="timeout").exists(), 10, "the in-process timer to fire")
    assert list(Turn.objects.filter(debate=debate).values_list("seat", "kind")) == [("A", "speech"), ("B", "timeout")]
    kinds = list(DebateEvent.objects.filter(debate=debate).values_list("kind", flat=True))
    assert kinds[-4:] == ["timed_out", "speeches_revealed", "round_started", "turn_state"]
    assert Debate.objects.get(pk=debate.pk).turn_deadline is None


def test_a_session_from_the_real_login_page_opens_the_websocket(room):
    browser = Browser(room.url)
    status, body, headers = browser.post(
        "/accounts/login/", form={"username": room.users["A"].username, "password": "pass-for-tests-1"}
    )
    assert status == 302, body[:500]
    session = [c.split(";")[0].split("=", 1)[1] for c in headers.get_all("Set-Cookie") if c.startswith("sessionid=")]
    assert session, headers
    alice = LiveSocket(room.url, room.debate.pk, session[0])
    state = alice.wait_for_type("state")
    assert state["my_seat"] == "A" and state["view"] == "debater"
    alice.close()


# The person's own socket -----------------------------------------------------------------------------


def personal_socket(url, session):
    """A real websocket to /ws/me/ (debates.consumers.PersonalConsumer), signed in with `session`."""
    from urllib.parse import urlsplit

    from websockets.sync.client import connect

    socket = connect(
        f"ws://{urlsplit(url).netloc}/ws/me/",
        origin=url,
        additional_headers={"Cookie": f"sessionid={session}"},
        open_timeout=15,
        legacy=True,
    )
    assert json.loads(socket.recv(timeout=15)) == {"type": "hello"}
    return socket


def next_notice(socket, kind, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["type"] == "notice" and frame["kind"] == kind:
            return frame


def test_the_persons_own_socket_hears_their_turn_and_the_end_through_daphne_and_redis(room):
    """Speeches sent over the debate's websocket (saved on the process's database threads) reach
    the next person's own socket as a "your_turn" notice, and the end reaches everyone's."""
    judge, alice = (personal_socket(room.url, room.sessions[seat]) for seat in ("judge", "A"))
    sockets = {seat: room.connect(seat) for seat in ("A", "B", "judge")}
    for socket in sockets.values():
        socket.wait_for_type("state")
    room.start()
    assert next_notice(alice, "your_turn")["debate"] == room.debate.pk
    play_first_round(room, sockets)
    assert next_notice(judge, "your_turn") == {"type": "notice", "kind": "your_turn", "debate": room.debate.pk}
    assert room_ack(
        sockets["judge"], {"type": "feedback", "probabilities": [0.5, 0.5], "end_debate": True, "client_id": "j-end"}
    )
    assert next_notice(judge, "debate_ended")["debate"] == room.debate.pk
    assert next_notice(alice, "debate_ended")["debate"] == room.debate.pk
    judge.send(json.dumps({"type": "ping"}))
    assert json.loads(judge.recv(timeout=15)) == {"type": "pong"}
    for socket in (judge, alice, *sockets.values()):
        socket.close()
