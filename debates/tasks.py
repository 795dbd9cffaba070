"""Celery tasks (threads in the embedded default). Every task is idempotent and safe to run twice,
and the database is the record of what is owed: a task lost with its worker or its broker is
scheduled again by the sweep (debates.sweep), which runs from Celery beat (sweep_owed_work)."""
import logging
import threading
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connection
from django.utils import timezone

from . import live, services, turn_leases

log = logging.getLogger(__name__)
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRIES = 30  # about 15 minutes of outage at the capped backoff; the sweep covers longer ones


def retry_after_database_error(task, error: Exception):
    """PostgreSQL restarted or unreachable: drop the dead connection (the retry opens a fresh one)
    and retry with backoff. Returns the exception to raise."""
    log.warning("%s: database error, retrying with a fresh connection: %s", task.name, error)
    connection.close()
    countdown = min(30, 2 ** task.request.retries)
    return task.retry(exc=error, countdown=countdown, max_retries=DATABASE_RETRIES)


@shared_task(bind=True, acks_late=True)
def expire_turn(self, debate_id: int) -> int:
    """Idempotent: acts only if the debate's deadline has passed and it is still waiting."""
    try:
        events = services.time_out_turn(debate_id)
    except DATABASE_ERRORS as error:
        raise retry_after_database_error(self, error) from None
    live.publish(debate_id, events)
    return len(events)


def schedule_turn_timeout(debate_id: int, deadline: datetime) -> None:
    if settings.RUN_TASKS_IN_PROCESS:
        delay = max(0.0, (deadline - timezone.now()).total_seconds()) + 0.05
        timer = threading.Timer(delay, _expire_in_process, args=(debate_id,))
        timer.daemon = True
        timer.start()
    else:
        expire_turn.apply_async(args=(debate_id,), eta=deadline)


def _expire_in_process(debate_id: int) -> None:
    try:
        live.publish(debate_id, services.time_out_turn(debate_id))
    except DATABASE_ERRORS:  # the sweep records it once the database answers again
        log.warning("could not time out debate %s now; the sweep will", debate_id, exc_info=True)
    finally:
        close_old_connections()


@shared_task(bind=True, acks_late=True, max_retries=4)
def run_ai_turn(self, debate_id: int, seat: str, expected_round: int) -> str:
    """Plays an AI seat's turn. Idempotent and safe to run twice: it does nothing unless that seat
    is still expected in that round (and no other task is playing it), and the turn is saved under
    client_id ai-<round>-<seat>. A back-end that keeps failing is retried with backoff, then the
    seat forfeits the turn; a database error is retried with a fresh connection."""
    from .agents import turns

    try:
        return _play_ai_turn(debate_id, seat, expected_round)
    except turns.AgentUnavailable as error:
        if self.request.retries < self.max_retries:
            countdown = min(300, 10 * 2 ** self.request.retries)
            turn_leases.mark_queued(debate_id, expected_round, seat, delay=countdown)
            raise self.retry(exc=error, countdown=countdown)
        return turns.give_up(debate_id, seat, expected_round, error)
    except DATABASE_ERRORS as error:
        turns.withdraw(debate_id, seat, expected_round)
        turn_leases.mark_queued(debate_id, expected_round, seat, delay=30)
        raise retry_after_database_error(self, error) from None


def _play_ai_turn(debate_id: int, seat: str, expected_round: int) -> str:
    from .agents import turns

    with turn_leases.running(debate_id, expected_round, seat) as mine:
        if not mine:
            return "already_running"
        return turns.play_turn(debate_id, seat, expected_round)


def schedule_ai_turn(debate_id: int, seat: str, expected_round: int) -> None:
    from . import pixel_player

    pixel_delay = pixel_player.move_delay_of(debate_id, seat)
    if pixel_delay is not None:  # a tree search seat in an image debate: its own player
        schedule_pixel_turn(debate_id, seat, expected_round, pixel_delay)
        return
    turn_leases.mark_queued(debate_id, expected_round, seat)
    if settings.RUN_TASKS_IN_PROCESS:
        thread = threading.Thread(target=_ai_turn_in_process, args=(debate_id, seat, expected_round),
                                  name=f"ai-turn-{debate_id}-{seat}", daemon=True)
        thread.start()
    else:
        run_ai_turn.delay(debate_id, seat, expected_round)


def _ai_turn_in_process(debate_id: int, seat: str, expected_round: int) -> None:
    from .agents import turns

    try:
        _play_ai_turn(debate_id, seat, expected_round)
    except turns.AgentUnavailable as error:
        turns.give_up(debate_id, seat, expected_round, error)
    except DATABASE_ERRORS:  # the sweep runs the turn again once the database answers
        log.warning("AI turn of debate %s seat %s stopped by a database error", debate_id, seat, exc_info=True)
        turns.withdraw(debate_id, seat, expected_round)
    finally:
        close_old_connections()


@shared_task(bind=True, acks_late=True)
def play_pixel_turn(self, debate_id: int, seat: str, expected_round: int) -> str:
    """Plays a tree search seat's move in an image debate. Idempotent like run_ai_turn: nothing
    happens unless the seat is still expected in that round (client_id pixel-<round>-<seat>)."""
    try:
        return _play_pixel_turn(debate_id, seat, expected_round)
    except DATABASE_ERRORS as error:
        turn_leases.mark_queued(debate_id, expected_round, seat, delay=30)
        raise retry_after_database_error(self, error) from None


def _play_pixel_turn(debate_id: int, seat: str, expected_round: int) -> str:
    from . import pixel_player

    with turn_leases.running(debate_id, expected_round, seat) as mine:
        if not mine:
            return "already_running"
        return pixel_player.play_turn(debate_id, seat, expected_round)


def schedule_pixel_turn(debate_id: int, seat: str, expected_round: int, delay: float, only_once: bool = False) -> bool:
    """Runs the move `delay` seconds from now. only_once: skip when this turn was scheduled within
    the last ten minutes (a room opened again must not start a second search)."""
    from django.core.cache import cache

    claimed = cache.add(f"pixel-turn:{debate_id}:{expected_round}:{seat}", 1, timeout=int(delay) + 600)
    if only_once and not claimed:
        return False
    turn_leases.mark_queued(debate_id, expected_round, seat, delay=delay)
    if settings.RUN_TASKS_IN_PROCESS:
        timer = threading.Timer(delay, _pixel_turn_in_process, args=(debate_id, seat, expected_round))
        timer.daemon = True
        timer.start()
    else:
        play_pixel_turn.apply_async(args=(debate_id, seat, expected_round), countdown=delay)
    return True


def _pixel_turn_in_process(debate_id: int, seat: str, expected_round: int) -> None:
    try:
        _play_pixel_turn(debate_id, seat, expected_round)
    except DATABASE_ERRORS:
        log.warning("pixel move of debate %s seat %s stopped by a database error", debate_id, seat, exc_info=True)
    finally:
        close_old_connections()


@shared_task(acks_late=True, ignore_result=True)
def sweep_owed_work() -> dict:
    """Run by Celery beat every SWEEP_INTERVAL seconds (see debates.sweep)."""
    from . import sweep

    try:
        return sweep.sweep()
    except DATABASE_ERRORS as error:  # the next sweep tries again
        log.warning("sweep: database unreachable (%s); the next sweep tries again", error)
        connection.close()
        return {"skipped": "database unreachable"}
