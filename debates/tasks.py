"""Celery tasks of the debates app, started through debates.background (threads in the embedded
default). Every task is idempotent and safe to run twice, and the database is the record of what
is owed: a task lost with its worker or its broker is scheduled again by the sweep
(debates.sweep), which runs from Celery beat (sweep_owed_work)."""

import logging
import smtplib

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import InterfaceError, OperationalError, connection

from . import live, pixel_player, services, sweep, turn_leases
from .background import BackgroundTask

log = logging.getLogger(__name__)
DATABASE_ERRORS = (OperationalError, InterfaceError)
DATABASE_RETRIES = 30  # about 15 minutes of outage at the capped backoff; the sweep covers longer ones
EMAIL_RETRIES = 8  # about half an hour of a mail server that refuses or times out, then the e-mail is dropped
MAIL_ERRORS = (OSError, smtplib.SMTPException)  # OSError: refused, unreachable, timed out


def retry_after_database_error(task, error: Exception):
    """PostgreSQL restarted or unreachable: drop the dead connection (the retry opens a fresh one)
    and retry with backoff. Returns the exception to raise."""
    log.warning("%s: database error, retrying with a fresh connection: %s", task.name, error)
    connection.close()
    countdown = min(30, 2**task.request.retries)
    return task.retry(exc=error, countdown=countdown, max_retries=DATABASE_RETRIES)


def _expire_in_process(debate_id: int) -> None:
    try:
        live.publish(debate_id, services.time_out_turn(debate_id))
    except DATABASE_ERRORS:  # the sweep records it once the database answers again
        log.warning("could not time out debate %s now; the sweep will", debate_id, exc_info=True)


@shared_task(base=BackgroundTask, bind=True, acks_late=True, in_process=staticmethod(_expire_in_process))
def expire_turn(self, debate_id: int) -> int:
    """Idempotent: acts only if the debate's deadline has passed and it is still waiting.
    Dispatched with eta=the deadline."""
    try:
        events = services.time_out_turn(debate_id)
    except DATABASE_ERRORS as error:
        raise retry_after_database_error(self, error) from None
    live.publish(debate_id, events)
    return len(events)


class AITurnTask(BackgroundTask):
    """run_ai_turn's start: a tree search seat in an image debate has its own player
    (play_pixel_turn, after the seat's move delay); any other AI turn is marked queued for the
    sweep (debates.turn_leases) and started."""

    def start(self, debate_id: int, seat: str, expected_round: int, **when) -> None:
        pixel_delay = pixel_player.move_delay_of(debate_id, seat)
        if pixel_delay is not None:
            play_pixel_turn.start(debate_id, seat, expected_round, countdown=pixel_delay)
            return
        turn_leases.mark_queued(debate_id, expected_round, seat)
        super().start(debate_id, seat, expected_round, **when)

    @staticmethod
    def in_process(debate_id: int, seat: str, expected_round: int) -> None:
        """One attempt: a back-end that fails forfeits the turn; a database error leaves it to the sweep."""
        from .agents import turns

        try:
            _play_ai_turn(debate_id, seat, expected_round)
        except turns.AgentUnavailable as error:
            turns.give_up(debate_id, seat, expected_round, error)
        except DATABASE_ERRORS:  # the sweep runs the turn again once the database answers
            log.warning("AI turn of debate %s seat %s stopped by a database error", debate_id, seat, exc_info=True)
            turns.withdraw(debate_id, seat, expected_round)


@shared_task(base=AITurnTask, bind=True, acks_late=True, max_retries=4)
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
            countdown = min(300, 10 * 2**self.request.retries)
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


class PixelTurnTask(BackgroundTask):
    """play_pixel_turn's start: the move runs `countdown` seconds from now. only_once: skip when
    this turn was started within the last ten minutes (a room opened again must not start a second
    search). Returns whether it started."""

    def start(
        self, debate_id: int, seat: str, expected_round: int, *, countdown: float = 0.0, only_once: bool = False
    ) -> bool:
        claimed = cache.add(f"pixel-turn:{debate_id}:{expected_round}:{seat}", 1, timeout=int(countdown) + 600)
        if only_once and not claimed:
            return False
        turn_leases.mark_queued(debate_id, expected_round, seat, delay=countdown)
        super().start(debate_id, seat, expected_round, countdown=countdown)
        return True

    @staticmethod
    def in_process(debate_id: int, seat: str, expected_round: int) -> None:
        try:
            _play_pixel_turn(debate_id, seat, expected_round)
        except DATABASE_ERRORS:
            log.warning("pixel move of debate %s seat %s stopped by a database error", debate_id, seat, exc_info=True)


@shared_task(base=PixelTurnTask, bind=True, acks_late=True)
def play_pixel_turn(self, debate_id: int, seat: str, expected_round: int) -> str:
    """Plays a tree search seat's move in an image debate. Idempotent like run_ai_turn: nothing
    happens unless the seat is still expected in that round (client_id pixel-<round>-<seat>)."""
    try:
        return _play_pixel_turn(debate_id, seat, expected_round)
    except DATABASE_ERRORS as error:
        turn_leases.mark_queued(debate_id, expected_round, seat, delay=30)
        raise retry_after_database_error(self, error) from None


def _play_pixel_turn(debate_id: int, seat: str, expected_round: int) -> str:
    with turn_leases.running(debate_id, expected_round, seat) as mine:
        if not mine:
            return "already_running"
        return pixel_player.play_turn(debate_id, seat, expected_round)


def _send_email_once(address: str, subject: str, body: str, username: str) -> None:
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
    except Exception:  # noqa: BLE001 - the embedded default tries once; a notice never fails anything
        log.exception("could not e-mail %s", username)


@shared_task(
    base=BackgroundTask, bind=True, acks_late=True, ignore_result=True, in_process=staticmethod(_send_email_once)
)
def send_email(self, address: str, subject: str, body: str, username: str) -> str:
    """A notice by e-mail (debates.notices.email), retried with backoff while the mail server fails.
    A notice that is late is still worth sending; one that never goes is logged."""
    try:
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [address])
    except MAIL_ERRORS as error:
        if self.request.retries >= EMAIL_RETRIES:
            log.error("could not e-mail %s after %d tries: %s", username, EMAIL_RETRIES + 1, error)
            return "gave_up"
        log.warning("could not e-mail %s yet (%s); retrying", username, error)
        raise self.retry(exc=error, countdown=min(600, 10 * 2**self.request.retries), max_retries=EMAIL_RETRIES)
    return "sent"


@shared_task(acks_late=True, ignore_result=True)
def sweep_owed_work() -> dict:
    """Run by Celery beat every SWEEP_INTERVAL seconds (see debates.sweep)."""
    try:
        return sweep.sweep()
    except DATABASE_ERRORS as error:  # the next sweep tries again
        log.warning("sweep: database unreachable (%s); the next sweep tries again", error)
        connection.close()
        return {"skipped": "database unreachable"}
