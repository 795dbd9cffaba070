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
