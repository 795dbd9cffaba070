"""The sweep: the database is the record of what is owed, so a periodic pass finds what no task
is doing any more and does it again, idempotently.

- Overdue turn deadlines (the timer task died with its worker, sat in a restarted broker, or fired
  while PostgreSQL was down): services.time_out_turn, which acts only on a passed deadline.
- AI seats that are expected with no task queued or running (debates.turn_leases): their turn is
  scheduled again. The turn is saved under client_id ai-<round>-<seat>, so two tasks store one turn.

The rule for AI seats and the clock: the turn clock never times out an AI seat (services.
time_out_turn skips it). An AI turn ends with its speech, or with a recorded failure
(ai_turn_failed, then a timeout turn) once its back-end keeps failing or the sweep has restarted
it MAX_RESTARTS times. So a dead worker delays an AI seat; it never costs the seat its turn.

Run by Celery beat in production (debates.tasks.sweep_owed_work every SWEEP_INTERVAL seconds) and
by one timer thread per web process in the embedded default (start_in_process)."""

import logging
import threading

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections
from django.utils import timezone

from . import background, live, services, turn_leases
from .models import Debate, Participant
from .protocol import JUDGE

log = logging.getLogger(__name__)
MAX_RESTARTS = 3
LOCK_KEY = "debatelab:sweep-lock"


def sweep() -> dict:
    """One pass. Returns what it did: {"timeouts": debates timed out, "ai_turns": turns restarted}."""
    if not cache.add(LOCK_KEY, 1, timeout=max(30, int(settings.DEBATELAB_SWEEP_INTERVAL * 3))):
        return {"skipped": "another sweep is running"}
    try:
        return {"timeouts": record_overdue_timeouts(), "ai_turns": restart_orphaned_ai_turns()}
    finally:
        cache.delete(LOCK_KEY)


def record_overdue_timeouts() -> int:
    done = 0
    overdue = (
        Debate.objects.filter(status=Debate.LIVE, turn_deadline__lte=timezone.now())
        .order_by("turn_deadline")
        .values_list("pk", flat=True)
    )
    for debate_id in overdue:
        events = services.time_out_turn(debate_id)
        if events:
            live.publish(debate_id, events)
            done += 1
    return done


def owed_ai_turns():
    """(debate_id, seat, round) for each AI seat that a live debate is waiting for."""
    debate_ids = (
        Participant.objects.filter(debate__status=Debate.LIVE, agent__isnull=False)
        .values_list("debate_id", flat=True)
        .distinct()
    )
    for debate in Debate.objects.filter(pk__in=list(debate_ids)).select_related("question"):
        engine = debate.engine()
        if engine.finished:
            continue
        ai_seats = set(debate.participants.filter(agent__isnull=False).values_list("seat", flat=True))
        for seat in engine.expected_seats():
            if seat in ai_seats and seat != JUDGE:
                yield debate.pk, seat, engine.round_index


def restart_orphaned_ai_turns() -> int:
    from .agents import turns
    from .agents.errors import AgentError

    restarted = 0
    for debate_id, seat, round_index in list(owed_ai_turns()):
        if turn_leases.is_taken(debate_id, round_index, seat):
            continue
        turns.withdraw(debate_id, seat, round_index)  # what a dead attempt streamed is void
        if turn_leases.restarts(debate_id, round_index, seat) > MAX_RESTARTS:
            turns.give_up(
                debate_id,
                seat,
                round_index,
                AgentError("worker_lost", f"the turn was lost with its worker {MAX_RESTARTS + 1} times"),
            )
            continue
        log.warning(
            "sweep: AI turn of debate %s seat %s round %s had no task; scheduling it again",
            debate_id,
            seat,
            round_index + 1,
        )
        background.dispatch("debates.tasks.run_ai_turn", debate_id, seat, round_index)
        restarted += 1
    return restarted


_started = False
_start_lock = threading.Lock()


def start_in_process() -> bool:
    """The embedded default (no broker, no beat): one daemon thread per process runs the sweep every
    SWEEP_INTERVAL seconds. Does nothing in production or when the interval is 0."""
    global _started
    interval = settings.DEBATELAB_SWEEP_INTERVAL
    if not settings.RUN_TASKS_IN_PROCESS or interval <= 0:
        return False
    with _start_lock:
        if _started:
            return False
        _started = True
    background.start_thread(_sweep_forever, interval, name="debatelab-sweep")
    return True


def _sweep_forever(interval: float) -> None:
    stop = threading.Event()
    while not stop.wait(interval):
        try:
            sweep()
        except Exception:  # noqa: BLE001 - database down: try again at the next interval
            log.warning("sweep failed; trying again in %s s", interval, exc_info=True)
        finally:
            close_old_connections()
