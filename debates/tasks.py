import threading
from datetime import datetime

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from . import live, services


@shared_task(acks_late=True)
def expire_turn(debate_id: int) -> int:
    """Idempotent: acts only if the debate's deadline has passed and it is still waiting."""
    events = services.time_out_turn(debate_id)
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
    from django.db import close_old_connections

    try:
        expire_turn(debate_id)
    finally:
        close_old_connections()


@shared_task(bind=True, acks_late=True, max_retries=4)
def run_ai_turn(self, debate_id: int, seat: str, expected_round: int) -> str:
    """Plays an AI seat's turn. Idempotent and safe to run twice: it does nothing unless that seat
    is still expected in that round, and the turn is saved under client_id ai-<round>-<seat>.
    A back-end that keeps failing is retried with backoff, then the seat forfeits the turn."""
    from .agents import turns

    try:
        return turns.play_turn(debate_id, seat, expected_round)
    except turns.AgentUnavailable as error:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=min(300, 10 * 2 ** self.request.retries))
        return turns.give_up(debate_id, seat, expected_round, error)


def schedule_ai_turn(debate_id: int, seat: str, expected_round: int) -> None:
    from . import pixel_player

    pixel_delay = pixel_player.move_delay_of(debate_id, seat)
    if pixel_delay is not None:  # a tree search seat in an image debate: its own player
        schedule_pixel_turn(debate_id, seat, expected_round, pixel_delay)
        return
    if settings.RUN_TASKS_IN_PROCESS:
        thread = threading.Thread(target=_ai_turn_in_process, args=(debate_id, seat, expected_round),
                                  name=f"ai-turn-{debate_id}-{seat}", daemon=True)
        thread.start()
    else:
        run_ai_turn.delay(debate_id, seat, expected_round)


def _ai_turn_in_process(debate_id: int, seat: str, expected_round: int) -> None:
    from django.db import close_old_connections

    from .agents import turns

    try:
        turns.play_turn(debate_id, seat, expected_round)
    except turns.AgentUnavailable as error:
        turns.give_up(debate_id, seat, expected_round, error)
    finally:
        close_old_connections()


@shared_task(acks_late=True)
def play_pixel_turn(debate_id: int, seat: str, expected_round: int) -> str:
    """Plays a tree search seat's move in an image debate. Idempotent like run_ai_turn: nothing
    happens unless the seat is still expected in that round (client_id pixel-<round>-<seat>)."""
    from . import pixel_player

    return pixel_player.play_turn(debate_id, seat, expected_round)


def schedule_pixel_turn(debate_id: int, seat: str, expected_round: int, delay: float, only_once: bool = False) -> bool:
    """Runs the move `delay` seconds from now. only_once: skip when this turn was scheduled within
    the last ten minutes (a room opened again must not start a second search)."""
    from django.core.cache import cache

    claimed = cache.add(f"pixel-turn:{debate_id}:{expected_round}:{seat}", 1, timeout=int(delay) + 600)
    if only_once and not claimed:
        return False
    if settings.RUN_TASKS_IN_PROCESS:
        timer = threading.Timer(delay, _pixel_turn_in_process, args=(debate_id, seat, expected_round))
        timer.daemon = True
        timer.start()
    else:
        play_pixel_turn.apply_async(args=(debate_id, seat, expected_round), countdown=delay)
    return True


def _pixel_turn_in_process(debate_id: int, seat: str, expected_round: int) -> None:
    from django.db import close_old_connections

    try:
        play_pixel_turn(debate_id, seat, expected_round)
    finally:
        close_old_connections()
