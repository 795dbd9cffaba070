"""Telling people that something needs them: "your turn" and "the debate ended" here, "you can
judge now" in judging.notices. Each notice goes to the person's own sockets (/ws/me/, which wake
their open lobby or waiting page; debates.live.notify_users) and, when they gave an address and are
not in the debate's room right now, by e-mail, sent in the background with retries (the console
back-end prints it unless EMAIL_BACKEND names another). Pages show the same notices in the tab title
and as browser notifications (static/js/notices.js). Everything is sent after the commit and
nothing here ever fails the caller.
"""

import logging

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from . import live, presence
from .background import dispatch
from .models import Debate, Participant
from .protocol import JUDGE

log = logging.getLogger(__name__)


def email(user, subject: str, body: str) -> None:
    """Handed to the background (debates.tasks.send_email) after the transaction commits, so nobody
    is told of something that was rolled back, and no page or room socket waits on a mail server."""
    if not getattr(user, "email", ""):
        return
    address, username = user.email, user.get_username()

    def hand_over():
        try:
            dispatch("debates.tasks.send_email", address, subject, body, username)
        except Exception:  # noqa: BLE001 - a notice never breaks the page; the room and lobby still heard it
            log.exception("could not hand the e-mail to %s to the background", username)

    transaction.on_commit(hand_over)


def room_url(debate_id: int) -> str:
    return settings.DEBATELAB_SITE_URL + reverse("debate_room", args=[debate_id])


def _people(debate_id: int, seats=None) -> list[Participant]:
    """The debate's seats held by people (never AI seats), with their users."""
    held = Participant.objects.filter(debate_id=debate_id, agent__isnull=True, user__isnull=False)
    if seats is not None:
        held = held.filter(seat__in=list(seats))
    return list(held.select_related("user"))


def _question_text(debate_id: int) -> str:
    """Read only when someone is mailed: the question row also holds the passage, often long."""
    return Debate.objects.filter(pk=debate_id).values_list("question__text", flat=True).first() or ""


def _absent(debate_id: int, people: list[Participant]) -> list[Participant]:
    """Those with an address who have no connection to the room now (presence is only asked when
    someone could be mailed)."""
    mailable = [p for p in people if p.user.email]
    if not mailable:
        return []
    online = set(presence.online_seats(debate_id))
    return [p for p in mailable if p.seat not in online]


def after_commit(function, *args) -> None:
    """Runs a notice after the commit; a failure is logged, never raised into the debate."""

    def run():
        try:
            function(*args)
        except Exception:  # noqa: BLE001 - a notice is never a reason to fail a turn
            log.exception("could not send the %s notice for %s", function.__name__, args)

    transaction.on_commit(run)


def tell_whose_turn(debate_id: int, people: dict[str, int], mailable: list[str]) -> None:
    """The people ({seat: user id}) whose turn has just started: a "your_turn" notice, and an e-mail
    to those of `mailable` (debaters with an address) who are not in the room; a judge's feedback
    round is announced in the room and the lobby only. Runs after every turn, so the caller, which
    has the seats' users loaded, says who could be mailed: most turns then cost no query here."""
    live.notify_users(people.values(), {"kind": "your_turn", "debate": debate_id})
    if not mailable:
        return
    for participant in _absent(debate_id, _people(debate_id, mailable)):
        email(
            participant.user,
            "Your turn in a debate",
            f"It is your turn in the debate about “{_question_text(debate_id)}”.\n\n"
            f"Open it here: {room_url(debate_id)}\n",
        )


def tell_debate_ended(debate_id: int) -> None:
    """Every person in the debate hears that it ended; its debaters and judge who are not in the
    room are e-mailed a link to it (the judge's verdict is due now)."""
    people = _people(debate_id)
    if not people:
        return
    live.notify_users([p.user_id for p in people], {"kind": "debate_ended", "debate": debate_id})
    for participant in _absent(debate_id, [p for p in people if p.is_debater or p.seat == JUDGE]):
        next_step = "Give your verdict here" if participant.seat == JUDGE else "Read it here"
        email(
            participant.user,
            "The debate has ended",
            f"The debate about “{_question_text(debate_id)}” has ended.\n\n{next_step}: {room_url(debate_id)}\n",
        )


def tell_lobby_changed(debate: Debate, user_ids) -> None:
    """Their list of debates changed (a seat was made, a debate started): open lobbies refresh."""
    live.notify_users(user_ids, {"kind": "lobby", "debate": debate.pk})
