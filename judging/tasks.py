"""Celery tasks of the judging app (a thread or the calling process in the embedded default)."""
import logging
import threading

from celery import shared_task
from django.conf import settings

log = logging.getLogger(__name__)


@shared_task(acks_late=True)
def pixel_verdict(debate_id: int) -> str:
    """The pixel judge's verdict on a finished image debate. Idempotent: one verdict per debate and
    judge. A debate it cannot judge, or a missing judge, is logged and left for a later run."""
    from debates import pixel_debates
    from debates.protocol import Refused

    from . import pixel_judge

    try:
        verdict = pixel_judge.judge_debate(debate_id)
    except (Refused, pixel_debates.JudgeMissing) as error:
        log.warning("no pixel judge verdict for debate %s: %s", debate_id, getattr(error, "message", error))
        return f"skipped: {getattr(error, 'message', error)}"
    return f"verdict {verdict.pk}"


def schedule_pixel_verdict(debate_id: int) -> None:
    if settings.RUN_TASKS_IN_PROCESS:
        threading.Thread(target=_pixel_verdict_in_process, args=(debate_id,), name=f"pixel-verdict-{debate_id}",
                         daemon=True).start()
    else:
        pixel_verdict.delay(debate_id)


def _pixel_verdict_in_process(debate_id: int) -> None:
    from django.db import close_old_connections

    try:
        pixel_verdict(debate_id)
    finally:
        close_old_connections()


@shared_task(acks_late=True)
def pixel_selfplay_unit(run: dict, image_index: int, pixels: int, precommit: bool) -> dict:
    """Plays and stores the games of one image and setting of a self-play run (judging.pixel_selfplay).
    Idempotent and safe to retry: games already stored are not played again, and a game stored
    twice at once is kept once."""
    from . import pixel_selfplay

    stored = pixel_selfplay.run_unit(pixel_selfplay.SelfPlayRun.from_dict(run), image_index, pixels, precommit)
    return {"image_index": image_index, "pixels": pixels, "precommit": precommit, "stored": stored}
