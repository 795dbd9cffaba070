"""Celery tasks of the judging app, started through debates.background (threads in the embedded
default)."""

import logging

from celery import shared_task

from debates.background import BackgroundTask

log = logging.getLogger(__name__)


@shared_task(base=BackgroundTask, acks_late=True)
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


# ---------------------------------------------------------------------------------------------
# The AI judge seated in a debate: feedback in each judge feedback round, the verdict at the end.
# Retried with backoff like AI debaters' turns (debates.tasks.run_ai_turn) when the back-end is
# unavailable; a report that never comes is recorded as a timed-out turn so the debate goes on.

AI_JUDGE_RETRIES = 4


def _backoff(retries: int) -> int:
    return min(300, 10 * 2**retries)


def _ai_judge_feedback_in_process(debate_id: int, expected_round: int) -> None:
    """One attempt: an AI judge whose back-end fails forfeits its feedback."""
    from debates.agents.errors import AgentError

    from . import ai_judges

    try:
        ai_judges.give_feedback(debate_id, expected_round)
    except AgentError as error:
        ai_judges.forfeit_feedback(debate_id, expected_round, error)


def _ai_judge_verdict_in_process(debate_id: int) -> None:
    """One attempt: a verdict that cannot be had is logged (manage.py ai_judge gives it later)."""
    from debates.agents.errors import AgentError
    from debates.protocol import Refused

    from . import ai_judges

    try:
        ai_judges.seated_verdict(debate_id)
    except (AgentError, Refused) as error:
        log.warning("no AI judge verdict for debate %s: %s", debate_id, getattr(error, "message", error))


@shared_task(
    base=BackgroundTask,
    bind=True,
    acks_late=True,
    max_retries=AI_JUDGE_RETRIES,
    in_process=staticmethod(_ai_judge_feedback_in_process),
)
def ai_judge_feedback(self, debate_id: int, expected_round: int) -> str:
    """Idempotent: nothing happens unless the AI judge is still expected in that round."""
    from debates.agents.errors import AgentError, AgentUnavailable

    from . import ai_judges

    try:
        return ai_judges.give_feedback(debate_id, expected_round)
    except AgentUnavailable as error:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from error
        return ai_judges.forfeit_feedback(debate_id, expected_round, error)
    except AgentError as error:
        return ai_judges.forfeit_feedback(debate_id, expected_round, error)


@shared_task(
    base=BackgroundTask,
    bind=True,
    acks_late=True,
    max_retries=AI_JUDGE_RETRIES,
    in_process=staticmethod(_ai_judge_verdict_in_process),
)
def ai_judge_verdict(self, debate_id: int) -> str:
    """Idempotent: one verdict per debate and AI judge. A verdict that cannot be had is logged and
    the debate waits for it (manage.py ai_judge gives it later)."""
    from debates.agents.errors import AgentError, AgentUnavailable
    from debates.protocol import Refused

    from . import ai_judges

    try:
        verdict = ai_judges.seated_verdict(debate_id)
    except AgentUnavailable as error:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=_backoff(self.request.retries)) from error
        log.warning("no AI judge verdict for debate %s: %s", debate_id, error)
        return f"failed: {error.code}"
    except (AgentError, Refused) as error:
        log.warning("no AI judge verdict for debate %s: %s", debate_id, getattr(error, "message", error))
        return f"failed: {getattr(error, 'code', 'refused')}"
    return "no AI judge" if verdict is None else f"verdict {verdict.pk}"


@shared_task(acks_late=True)
def pixel_selfplay_units(run: dict, units: list) -> dict:
    """Plays, in lockstep, and stores the games of a few images and settings of a self-play run
    (judging.pixel_selfplay.run_units). Idempotent and safe to retry: games already stored are not
    played again, and a game stored twice at once is kept once."""
    from . import pixel_selfplay

    stored = pixel_selfplay.run_units(pixel_selfplay.SelfPlayRun.from_dict(run), units)
    return {"units": units, "stored": stored}
