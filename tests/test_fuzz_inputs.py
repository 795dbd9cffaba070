"""Property-based fuzzing of what people can send (issue 10: 25 malformed inputs gave HTTP 500 or
closed the socket with 1011): websocket frames to a real daphne server, API bodies and query
strings, and the verdict and offline-judging forms. Whatever comes in: no 500, no 1011, nothing
half-written, presence unchanged. The named examples are the ones the issue found."""

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from debates import presence, services
from debates.models import Debate, DebateEvent, Turn
from tests.live_clients import LiveSocket, session_for

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.integers(min_value=10**300, max_value=10**400),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
message_fields = st.fixed_dictionaries(
    {"type": st.sampled_from(["speech", "feedback", "sync", "ping", "nonsense"]) | json_values},
    optional={
        "text": json_values,
        "comment": json_values,
        "private_note": json_values,
        "client_id": json_values,
        "seat": json_values,
        "reveal": json_values,
        "rectangles": json_values,
        "probabilities": json_values,
        "end_debate": json_values,
        "after": json_values,
    },
)
frames = (
    message_fields.map(json.dumps)
    | json_values.map(json.dumps)
    | st.text(max_size=200)
    | st.integers(1, 15_000).map(lambda n: "[" * n)
    | st.integers(1, 5_000).map(lambda n: '{"a":' * n)
)


def _snapshot(debate):
    return (
        Turn.objects.filter(debate=debate).count(),
        DebateEvent.objects.filter(debate=debate).count(),
        Debate.objects.get(pk=debate.pk).status,
    )


@pytest.mark.slow
def test_websocket_frames_never_close_the_socket_or_write_anything(daphne_server, transactional_db, two_round_debate):
    """The debate has not started, so no frame may store anything: every one is refused or answered."""
    debate = two_round_debate
    alice = debate.participants.get(seat="A").user
    socket = LiveSocket(daphne_server, debate.pk, session_for(alice))
    socket.wait_for_type("state")
    before = _snapshot(debate)

    @FUZZ
    @given(frame=frames)
    @example(frame="[" * 15_000)
    @example(frame=json.dumps({"type": "feedback", "probabilities": [10**400, 0]}))
    @example(frame=json.dumps({"type": "speech", "text": "hi", "client_id": "x" * 65}))
    @example(frame="not json at all")
    def check(frame):
        socket.send(frame)
        socket.send({"type": "ping"})
        socket.wait_for_type("pong")  # the socket is still open and answering

    check()
    socket.send(b"\x00binary")
    socket.send({"type": "ping"})
    socket.wait_for_type("pong")
    assert _snapshot(debate) == before
    assert presence.online_seats(debate.pk) == ["A"]
    socket.close()


@pytest.mark.slow
def test_websocket_frames_in_a_live_debate_store_whole_turns_or_nothing(
    daphne_server, transactional_db, two_round_debate
):
    """Live: a frame may be a valid speech or feedback, which is stored whole with its events; the
    rest are refused. The event log stays gapless and every seat's presence is as it was."""
    debate = two_round_debate
    services.start_debate(debate.pk)
    sockets = {
        seat: LiveSocket(daphne_server, debate.pk, session_for(debate.participants.get(seat=seat).user))
        for seat in ("A", "judge")
    }
    for socket in sockets.values():
        socket.wait_for_type("state")

    @FUZZ
    @given(seat=st.sampled_from(["A", "judge"]), frame=frames)
    @example(seat="judge", frame=json.dumps({"type": "feedback", "probabilities": [10**400, 0]}))
    @example(seat="A", frame=json.dumps({"type": "speech", "text": "x", "rectangles": [[1e400, 0, 1, 1]]}))
    def check(seat, frame):
        sockets[seat].send(frame)
        sockets[seat].send({"type": "ping"})
        sockets[seat].wait_for_type("pong")

    check()
    debate.refresh_from_db()
    seqs = list(DebateEvent.objects.filter(debate=debate).order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, debate.last_seq + 1))
    assert Turn.objects.filter(debate=debate, seat="A", round_index=0).count() <= 1
    assert presence.online_seats(debate.pk) == ["A", "judge"]
    for socket in sockets.values():
        socket.close()


@pytest.mark.slow
def test_experiment_websocket_ignores_frames_that_are_not_json(daphne_server, transactional_db, make_user):
    from websockets.sync.client import connect

    from debates.models import Experiment

    rita = make_user("rita", "researcher")
    experiment = Experiment.objects.create(owner=rita, name="fuzz")
    host = daphne_server.replace("http://", "")
    with connect(
        f"ws://{host}/ws/experiments/{experiment.pk}/",
        origin=daphne_server,
        open_timeout=10,
        additional_headers={"Cookie": f"sessionid={session_for(rita)}"},
    ) as ws:
        ws.recv(timeout=10)  # the first summary
        for frame in ("not json", "[" * 15_000, b"\x01\x02", json.dumps([1, 2]), json.dumps({"type": "refresh"})):
            ws.send(frame)
        summary = json.loads(ws.recv(timeout=10))  # the refresh still answers: the socket survived
        assert isinstance(summary, dict)


@pytest.mark.slow
@FUZZ
@given(after=st.text(max_size=30) | st.integers().map(str) | st.just("9" * 5000))
@example(after="²")
@example(after="%C2%B2")
def test_the_state_api_answers_any_after_without_a_500(after, client, two_round_debate):
    alice = two_round_debate.participants.get(seat="A").user
    client.force_login(alice)
    response = client.get(f"/api/debates/{two_round_debate.pk}/state/", {"after": after})
    assert response.status_code in (200, 400)


@pytest.mark.slow
@FUZZ
@given(
    body=st.binary(max_size=300)
    | json_values.map(lambda v: json.dumps(v).encode())
    | message_fields.map(lambda v: json.dumps(v).encode())
)
@example(body=("[" * 15_000).encode())
def test_the_action_api_refuses_bad_bodies_without_writing(body, client, two_round_debate):
    alice = two_round_debate.participants.get(seat="A").user
    client.force_login(alice)
    before = _snapshot(two_round_debate)
    response = client.post(f"/api/debates/{two_round_debate.pk}/actions/", body, content_type="application/json")
    assert response.status_code in (400, 403)
    assert _snapshot(two_round_debate) == before  # not started: nothing may be stored


percent = (
    st.text(max_size=12)
    | st.floats().map(str)
    | st.integers().map(str)
    | st.sampled_from(["inf", "-inf", "nan", "1e400", "9" * 5000, "", "50", "100"])
)
form = st.fixed_dictionaries(
    {"p0": percent, "p1": percent},
    optional={
        "reason": st.text(max_size=50) | st.just("\x00"),
        "client_id": st.text(max_size=80),
        "seconds_spent": percent,
        "action": st.sampled_from(["step", "final", "x"]),
        "step": percent,
    },
)


@pytest.fixture
def finished(two_round_debate):
    debate = two_round_debate
    people = {p.seat: p.user for p in debate.participants.select_related("user")}
    services.start_debate(debate.pk)
    services.submit_action(debate.pk, people["A"], kind="speech", text="A opens.")
    services.submit_action(debate.pk, people["B"], kind="speech", text="B opens.")
    services.submit_action(debate.pk, people["judge"], kind="feedback", probabilities=[0.5, 0.5], end_debate=True)
    debate.refresh_from_db()
    assert debate.status == Debate.AWAITING_VERDICT
    return debate, people


def _consistent(debate):
    """A verdict is all there (and completes the debate) or not there at all."""
    from judging.models import Verdict

    debate.refresh_from_db()
    verdicts = Verdict.objects.filter(debate=debate, live=True)
    assert verdicts.count() <= 1
    assert (debate.status == Debate.COMPLETE) == verdicts.exists()


@pytest.mark.slow
@FUZZ
@given(data=form)
@example(data={"p0": "inf", "p1": "0"})
@example(data={"p0": "1e400", "p1": "0"})
@example(data={"p0": "9" * 5000, "p1": "0"})
@example(data={"p0": "60", "p1": "40", "reason": "fine", "client_id": "c" * 65})
def test_the_verdict_form_answers_anything_without_a_500(data, client, finished):
    debate, people = finished
    client.force_login(people["judge"])
    response = client.post(f"/debates/{debate.pk}/verdict/", data)
    assert response.status_code in (200, 302, 400)
    _consistent(debate)


@pytest.mark.slow
@FUZZ
@given(data=form)
@example(data={"p0": "inf", "p1": "0", "action": "step", "step": "1"})
@example(data={"p0": "1e400", "p1": "0"})
@example(data={"p0": "9" * 5000, "p1": "0", "action": "step", "step": "9" * 5000})
def test_the_offline_form_answers_anything_without_a_500(data, client, finished, django_user_model):
    from judging.models import Assignment, StepReport

    debate, people = finished
    jules = django_user_model.objects.get_or_create(username="jules")[0]
    assignment = Assignment.objects.get_or_create(debate=debate, judge=jules, defaults={"mode": Assignment.STEPWISE})[0]
    client.force_login(jules)
    response = client.post(f"/judging/offline/{assignment.pk}/", data)
    assert response.status_code in (200, 302, 400)
    assignment.refresh_from_db()
    assert (assignment.verdict_id is not None) == (assignment.status == Assignment.DONE)
    steps = list(StepReport.objects.filter(assignment=assignment).values_list("step", flat=True))
    assert steps == list(range(1, len(steps) + 1))  # reports are whole and in order
