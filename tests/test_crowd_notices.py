"""Notices (issue 11, item 6): "your turn" and "the debate ended" by e-mail to people who gave an
address (never to AI seats, never to someone in the room right now), handed to the background only
once the transaction commits: in the embedded default a thread tries once and a failure is logged;
in production a real Celery worker tries again while a mail server (a TEST DOUBLE) turns it away.
Every notice also goes to the person's own websocket (/ws/me/), which the lobby and the study's
waiting room listen to. The socket is driven in process
through config.asgi's application (as tests/test_consumers_inprocess.py does), on the channel layer
the settings give (Redis under make test)."""

import logging

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from channels.testing import WebsocketCommunicator
from django.conf import settings

from config.asgi import application
from debates import notices, services, tasks
from debates.models import Debate, Participant
from judging import crowd
from tests.conftest import _subprocess_env, start_celery_worker
from tests.factories import dataset_questions, play_to_the_end, started_study, study_file
from tests.fake_smtp_server import FakeSMTPServer
from tests.live_clients import session_for
from tests.polling import wait_until

HEADERS = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]


def with_addresses(debate):
    for participant in debate.participants.select_related("user"):
        participant.user.email = f"{participant.user.username}@example.org"
        participant.user.save(update_fields=["email"])
    return debate


def sent(outbox, subject):
    return sorted(address for message in outbox if message.subject == subject for address in message.to)


@pytest.mark.django_db
def test_the_debaters_whose_turn_starts_are_mailed_after_the_commit(
    two_round_debate, sent_mail, django_capture_on_commit_callbacks
):
    debate = with_addresses(two_round_debate)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.start_debate(debate.pk)
    assert callbacks and sent_mail() == []  # nothing before the commit
    with django_capture_on_commit_callbacks(execute=True):  # the commit
        for callback in callbacks:
            callback()
    outbox = sent_mail()
    assert sent(outbox, "Your turn in a debate") == ["alice@example.org", "bob@example.org"]  # simultaneous
    message = outbox[0]
    assert f"{settings.DEBATELAB_SITE_URL}/debates/{debate.pk}/" in message.body
    assert debate.question.text in message.body
    outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_action(debate.pk, debate.participants.get(seat="A").user, kind="speech", text="A opens.")
    assert sent_mail() == []  # B's turn had already started: nobody is told twice
    with django_capture_on_commit_callbacks(execute=True):
        services.submit_action(debate.pk, debate.participants.get(seat="B").user, kind="speech", text="B opens.")
    # The judge's feedback round is announced in the room and the lobby, not by e-mail.
    assert sent(sent_mail(), "Your turn in a debate") == []


@pytest.mark.django_db
def test_nobody_in_the_room_and_no_ai_seat_is_mailed(
    two_round_debate, sent_mail, monkeypatch, django_capture_on_commit_callbacks
):
    debate = with_addresses(two_round_debate)
    # Who is connected comes from the presence store (debates/presence.py, tested with real sockets
    # in test_live.py); here its answer is set directly.
    online = {debate.pk: ["A"]}
    monkeypatch.setattr(notices.presence, "online_seats", lambda debate_id: online.get(debate_id, []))
    Participant.objects.filter(debate=debate, seat="B").update(agent={"backend": "scripted"})
    users = dict(debate.participants.values_list("seat", "user_id"))
    with django_capture_on_commit_callbacks(execute=True):
        notices.tell_whose_turn(debate.pk, {"A": users["A"], "B": users["B"]}, ["A", "B"])
    assert sent_mail() == []
    online.clear()
    with django_capture_on_commit_callbacks(execute=True):
        notices.tell_whose_turn(debate.pk, {"A": users["A"]}, ["A"])
    assert sent(sent_mail(), "Your turn in a debate") == ["alice@example.org"]


@pytest.mark.django_db
def test_the_debaters_and_the_judge_hear_that_the_debate_ended(
    two_round_debate, sent_mail, django_capture_on_commit_callbacks
):
    debate = with_addresses(two_round_debate)
    with django_capture_on_commit_callbacks(execute=True):
        play_to_the_end(debate)
    ended = [m for m in sent_mail() if m.subject == "The debate has ended"]
    assert sorted(m.to[0] for m in ended) == ["alice@example.org", "bob@example.org", "judy@example.org"]
    judge_mail = next(m for m in ended if m.to == ["judy@example.org"])
    assert f"Give your verdict here: {settings.DEBATELAB_SITE_URL}/debates/{debate.pk}/" in judge_mail.body


@pytest.mark.django_db
def test_a_failing_mail_server_is_logged_and_the_turn_stands(
    two_round_debate, sent_mail, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    debate = with_addresses(two_round_debate)

    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("no mail server")

    monkeypatch.setattr(tasks, "send_mail", refuse)
    with caplog.at_level(logging.ERROR, logger="debates.tasks"):
        with django_capture_on_commit_callbacks(execute=True):
            services.start_debate(debate.pk)
        assert Debate.objects.get(pk=debate.pk).status == Debate.LIVE
        assert sent_mail() == []
    assert "could not e-mail alice" in caplog.text


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.django_db
def test_a_worker_sends_the_mail_and_tries_again_when_the_mail_server_turns_it_away(two_round_debate, tmp_path):
    """In production a Celery worker sends notices: no web process waits on the mail server. This
    one (a TEST DOUBLE, tests/fake_smtp_server.py) turns the first connection away; the worker
    tries again after its backoff and the mail goes."""
    smtp = FakeSMTPServer(refuse_first=1).start()
    env = dict(
        _subprocess_env(),
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
        CELERY_QUEUE="mail-test",  # not the session's worker, which sends to the console
    )
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(env, log_path)
    try:
        debate = with_addresses(two_round_debate)
        alice = debate.participants.get(seat="A").user
        tasks.send_email.apply_async(
            args=(alice.email, "Your turn in a debate", f"Open it here: {notices.room_url(debate.pk)}", alice.username),
            queue="mail-test",
        )
        wait_until(lambda: smtp.messages, 60, lambda: f"the mail to arrive; worker log: {log_path.read_text()[-2000:]}")
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        smtp.stop()
    assert smtp.refused == 1 and len(smtp.messages) == 1
    assert "To: alice@example.org" in smtp.messages[0] and "Subject: Your turn in a debate" in smtp.messages[0]
    log = log_path.read_text()
    assert "could not e-mail alice yet" in log and "succeeded" in log


# The personal websocket, in process.


@pytest.fixture
def fresh_channel_layer():
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


async def personal_socket(user=None):
    headers = list(HEADERS)
    if user is not None:
        session = await database_sync_to_async(session_for)(user)
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    socket = WebsocketCommunicator(application, "/ws/me/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    return socket


async def notice(socket, kind, timeout=5):
    """The next notice of `kind` (other notices may come first: a lobby change, say)."""
    while True:
        frame = await socket.receive_json_from(timeout=timeout)
        if frame["type"] == "notice" and frame["kind"] == kind:
            return frame


@pytest.mark.django_db(transaction=True)
def test_turns_and_endings_reach_the_persons_own_socket_and_nobody_elses(two_round_debate, fresh_channel_layer):
    debate = two_round_debate
    people = {p.seat: p.user for p in debate.participants.select_related("user")}

    async def scenario():
        alice, judy = await personal_socket(people["A"]), await personal_socket(people["judge"])
        for socket in (alice, judy):
            assert await socket.receive_json_from(timeout=5) == {"type": "hello"}
        await database_sync_to_async(services.start_debate)(debate.pk)
        turn = await notice(alice, "your_turn")
        lobby = await notice(judy, "lobby")  # the judge's lobby shows the debate live
        assert await judy.receive_nothing(timeout=0.3)  # not the judge's turn
        await database_sync_to_async(play_to_the_end_from_live)(debate)
        ended = await notice(judy, "debate_ended")
        await alice.send_json_to({"type": "ping"})
        assert (await notice(alice, "debate_ended"))["debate"] == debate.pk
        for socket in (alice, judy):
            await socket.disconnect()
        return turn, lobby, ended

    turn, lobby, ended = async_to_sync(scenario)()
    assert turn == {"type": "notice", "kind": "your_turn", "debate": debate.pk}
    assert lobby["debate"] == debate.pk and ended["debate"] == debate.pk


def play_to_the_end_from_live(debate):
    people = {p.seat: p.user for p in debate.participants.select_related("user")}
    while not (engine := Debate.objects.get(pk=debate.pk).engine()).finished:
        seat = engine.expected_seats()[0]
        if seat == "judge":
            services.submit_action(debate.pk, people[seat], kind="feedback", probabilities=[0.5, 0.5])
        else:
            services.submit_action(debate.pk, people[seat], kind="speech", text=f"{seat} speaks.")


@pytest.mark.django_db(transaction=True)
def test_anonymous_visitors_are_closed_with_4403(fresh_channel_layer):
    async def scenario():
        socket = await personal_socket()
        closed = await socket.receive_output(timeout=5)
        await socket.wait()
        return closed

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4403}


STUDY = study_file(
    "Pushed study",
    "pushed-unit",
    pool=("pdeb1", "pdeb2"),
    study="""\
        platform: prolific
        wait_limit_seconds: 600
    """,
)


@pytest.mark.django_db(transaction=True)
def test_the_waiting_room_hears_arrivals_and_its_person_hears_the_seat(make_user, fresh_channel_layer):
    owner = make_user("pam", "researcher")
    make_user("pdeb1", "debater")
    make_user("pdeb2", "debater")
    dataset_questions("pushed-unit", 1, text="Only question?")
    study = started_study(owner, STUDY)

    def arrive(pid):
        participant = crowd.enter(study, crowd.Entry("prolific", pid))
        return crowd.progress(crowd.skip_empty_steps(participant, crowd.study_settings(crowd.study_version(study))))

    first = arrive("FIRST")
    assert first.status == "judging"  # the one debate's seat
    second = arrive("SECOND")
    assert second.status == "waiting" and crowd.seconds_to_wait_limit(second) in (599, 600)

    waiting_user = second.user

    async def scenario():
        waiting = await personal_socket(waiting_user)
        await waiting.receive_json_from(timeout=5)
        await database_sync_to_async(arrive)("THIRD")
        room = await notice(waiting, "room")
        # The first judge's seat is freed (the researcher releases them): a debate waits for a judge.
        await database_sync_to_async(release_and_reseat)(first, second)
        seated = await notice(waiting, "seated")
        await waiting.disconnect()
        return room, seated

    room, seated = async_to_sync(scenario)()
    assert room["room_text"].startswith("2 people are waiting") and room["open_debates"] == 0
    assert seated["debate"] == Debate.objects.get(participants__seat="judge", participants__user=second.user).pk


def release_and_reseat(first, second):
    Participant.objects.filter(seat="judge", user=first.user).delete()
    crowd.finish(first, "returned", "returned")
    crowd.progress(second)


@pytest.mark.django_db(transaction=True)
def test_the_waiting_room_hears_of_a_finished_debate_that_wants_a_further_judgment(make_user, fresh_channel_layer):
    owner = make_user("kim", "researcher")
    make_user("pdeb1", "debater")
    make_user("pdeb2", "debater")
    dataset_questions("pushed-unit", 1, text="Only question?")
    study = started_study(
        owner,
        STUDY.replace("judges:\n  kind: human\n", "judges:\n  kind: human\n  per_debate: 2\n  offline: all_at_once\n"),
    )

    def arrive(pid):
        participant = crowd.enter(study, crowd.Entry("prolific", pid))
        return crowd.progress(crowd.skip_empty_steps(participant, crowd.study_settings(crowd.study_version(study))))

    live_judge, waiting = arrive("LIVE"), arrive("NEXT")
    assert (live_judge.status, waiting.status) == ("judging", "waiting")
    waiting_user = waiting.user

    def verdict_and_return(participant):
        from judging.services import submit_verdict

        debate = Debate.objects.get(participants__seat="judge", participants__user=participant.user)
        play_to_the_end_from_live(debate)
        submit_verdict(debate.pk, participant.user, [0.7, 0.3], "Judged.")
        return crowd.progress(participant).status  # the judge's study page, after the verdict

    async def scenario():
        socket = await personal_socket(waiting_user)
        await socket.receive_json_from(timeout=5)
        moved_on = await database_sync_to_async(verdict_and_return)(live_judge)
        room = await notice(socket, "room")
        await socket.disconnect()
        return moved_on, room

    moved_on, room = async_to_sync(scenario)()
    assert moved_on == "completed" and room["open_debates"] == 1  # the waiting page asks to be seated
