"""The sweep (debates.sweep): overdue deadlines and AI turns that lost their task, found in the
database and done again exactly once. The fault tests (tests/test_faults.py) run it for real from
Celery beat against killed workers, a restarted Redis and a stopped PostgreSQL."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from debates import services, sweep, turn_leases
from debates.models import Debate
from debates.protocol import Protocol


def pass_deadline(debate):
    Debate.objects.filter(pk=debate.pk).update(turn_deadline=timezone.now() - timedelta(seconds=1))


def turns(debate):
    return list(debate.turns.order_by("pk").values_list("round_index", "seat", "kind"))


@pytest.fixture
def debate_with(make_user, question):
    """A started debate; `ai` names the seats played by the scripted debater (set after the start,
    so that no task was ever scheduled for them: as if it had been lost)."""

    def make(rounds=("sequential",), ai=(), turn_seconds=None):
        alice, bob = make_user(f"alice{time.monotonic_ns()}"), make_user(f"bob{time.monotonic_ns()}")
        protocol = Protocol(rounds=rounds, speaking_order=("A", "B"), turn_seconds=turn_seconds)
        debate = services.create_debate(
            question,
            protocol,
            {"A": (None if "A" in ai else alice, 0), "B": (None if "B" in ai else bob, 1)},
            answer_order=[0, 1],
        )
        services.start_debate(debate.pk)
        debate.participants.filter(seat__in=list(ai)).update(agent={"backend": "scripted", "token_delay": 0})
        return Debate.objects.get(pk=debate.pk)

    return make


def test_an_overdue_deadline_is_recorded_once(db, debate_with):
    debate = debate_with(turn_seconds=30)
    assert sweep.sweep() == {"timeouts": 0, "ai_turns": 0}  # not overdue yet
    pass_deadline(debate)
    assert sweep.sweep() == {"timeouts": 1, "ai_turns": 0}
    assert turns(debate) == [(0, "A", "timeout")]
    assert Debate.objects.get(pk=debate.pk).engine().expected_seats() == ("B",)
    assert sweep.sweep() == {"timeouts": 0, "ai_turns": 0}
    assert turns(debate) == [(0, "A", "timeout")]


def test_the_clock_does_not_time_out_an_ai_seat(db, debate_with):
    debate = debate_with(rounds=("simultaneous",), ai=("A",), turn_seconds=30)
    with turn_leases.running(debate.pk, 0, "A"):  # its turn is being played
        pass_deadline(debate)
        services.time_out_turn(debate.pk)
        assert turns(debate) == [(0, "B", "timeout")]  # the person, not the AI seat
        assert Debate.objects.get(pk=debate.pk).engine().expected_seats() == ("A",)
        assert sweep.sweep()["ai_turns"] == 0  # its lease says a task is on it


@pytest.mark.postgresql  # the turn's thread and this test share the database
def test_an_ai_turn_with_no_task_is_played_again_exactly_once(transactional_db, debate_with, settings):
    settings.RUN_TASKS_IN_PROCESS = True  # the turn runs in a thread, as in the embedded default
    debate = debate_with(ai=("A",))
    assert sweep.sweep() == {"timeouts": 0, "ai_turns": 1}
    assert sweep.sweep() == {"timeouts": 0, "ai_turns": 0}  # queued or running: left alone
    deadline = time.monotonic() + 30
    while not turns(debate) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert turns(debate) == [(0, "A", "speech")]
    assert debate.turns.get().client_id == "ai-0-A"
    assert sweep.sweep() == {"timeouts": 0, "ai_turns": 0}  # played: nothing owed


def test_a_turn_lost_too_often_is_recorded_as_failed_so_the_debate_goes_on(db, debate_with):
    debate = debate_with(ai=("A",))
    for _ in range(sweep.MAX_RESTARTS):
        turn_leases.restarts(debate.pk, 0, "A")
    assert sweep.sweep()["ai_turns"] == 0
    turn = debate.turns.get()
    assert (turn.seat, turn.kind, turn.payload["agent_error"]["code"]) == ("A", "timeout", "worker_lost")
    assert debate.events.filter(kind="ai_turn_failed").exists()
    assert Debate.objects.get(pk=debate.pk).engine().expected_seats() == ("B",)


def test_the_in_process_sweep_runs_only_in_the_embedded_default(settings):
    settings.RUN_TASKS_IN_PROCESS = False
    assert sweep.start_in_process() is False  # production: Celery beat runs it
    settings.RUN_TASKS_IN_PROCESS, settings.DEBATELAB_SWEEP_INTERVAL = True, 0
    assert sweep.start_in_process() is False  # turned off


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.postgresql
def test_the_embedded_default_sweeps_in_its_web_process(transactional_db, debate_with, tmp_path):
    """`make run` after a restart: the in-process timers died with the old process; the new one's
    sweep thread records the deadline that passed meanwhile."""
    from tests.conftest import _subprocess_env, start_daphne
    from tests.polling import wait_until

    debate = debate_with()
    pass_deadline(debate)  # as if its timer had been lost
    env = _subprocess_env()
    del env["REDIS_URL"]  # the embedded default: no broker, no beat
    env["SWEEP_INTERVAL"] = "1"
    process, _ = start_daphne(env, tmp_path / "daphne.log")
    try:
        wait_until(lambda: turns(debate), 20, "the sweep thread records the timeout")
        assert turns(debate) == [(0, "A", "timeout")]
    finally:
        process.terminate()
        process.wait(timeout=20)
