"""Recording verdicts: the one write path for a judge's final judgment."""

from django.db import transaction

from debates.models import Debate
from debates.protocol import JUDGE, Refused, validate_probabilities
from debates.services import MAX_CLIENT_ID, check_text, to_canonical

from .models import Verdict
from .verdicts import record_verdict, tied

MAX_REASON = 5_000


def submit_verdict(debate_id: int, user, probabilities, reason: str, seconds_spent=None, client_id: str = "", **fields):
    """probabilities are in the debate's display order. Returns (verdict, new events), published
    when the transaction commits. fields: further Verdict fields (judging.verdicts.record_verdict)."""
    with transaction.atomic():
        debate = Debate.objects.select_for_update(of=("self",)).select_related("question").get(pk=debate_id)
        participant = debate.seat_of(user)
        if participant is None or participant.seat != JUDGE:
            raise Refused("not_judge", "only this debate's judge may give its verdict")
        existing = Verdict.objects.filter(debate=debate, judge=user).first()
        if existing:
            if client_id and existing.client_id == client_id:
                return existing, []
            raise Refused("already_judged", "you have already given your verdict on this debate")
        if debate.status in (Debate.SCHEDULED, Debate.LIVE):
            raise Refused("debate_not_over", "the verdict comes after the debate ends")
        if debate.status == Debate.ABANDONED:
            raise Refused("debate_abandoned", "this debate was abandoned")
        canonical, reason, seconds = checked_judgment(debate, probabilities, reason, seconds_spent, client_id)
        return record_verdict(
            debate,
            canonical,
            judge=user,
            reason=reason,
            seconds_spent=seconds,
            client_id=client_id,
            completes=True,
            **fields,
        )


def checked_judgment(debate: Debate, probabilities, reason: str, seconds_spent, client_id: str):
    """Validates a person's final judgment, live or offline: (canonical probabilities, reason,
    seconds). Raises Refused with a clear message for anything wrong. A person is asked to favour
    one answer, so a tie is refused here (judging.verdicts has the rule for ties that reach it)."""
    if len(client_id or "") > MAX_CLIENT_ID:
        raise Refused("bad_client_id", f"client_id may have at most {MAX_CLIENT_ID} characters")
    canonical = list(validate_probabilities(to_canonical(debate, probabilities), len(debate.question.answers)))
    if tied(canonical):
        raise Refused("no_choice", "a verdict must favour one answer: the top probabilities are tied")
    check_text(reason=reason, client_id=client_id)
    reason = (reason or "").strip()
    if not reason:
        raise Refused("reason_required", "write a short reason for your verdict")
    if len(reason) > MAX_REASON:
        raise Refused("too_long", f"a reason may have at most {MAX_REASON} characters")
    return canonical, reason, _seconds(seconds_spent)


def _seconds(value):
    if value in (None, ""):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise Refused("bad_seconds", "seconds_spent must be a number") from None
    if not 0 <= seconds <= 7 * 24 * 3600:
        raise Refused("bad_seconds", "seconds_spent is out of range")
    return seconds
