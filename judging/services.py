"""Recording verdicts: the one write path for a judge's final judgment."""
from django.db import transaction

from debates.models import Debate
from debates.protocol import JUDGE, Event, Refused, validate_probabilities
from debates.services import MAX_CLIENT_ID, check_text, record_events, to_canonical

from . import scoring
from .models import Verdict

MAX_REASON = 5_000


def submit_verdict(debate_id: int, user, probabilities, reason: str, seconds_spent=None, client_id: str = ""):
    """probabilities are in the debate's display order. Returns (verdict, new events)."""
    with transaction.atomic():
        debate = Debate.objects.select_for_update().select_related("question").get(pk=debate_id)
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
        canonical, chosen, reason, seconds = checked_judgment(debate, probabilities, reason, seconds_spent, client_id)
        protocol = debate.get_protocol()
        debater_turns = debate.turns.exclude(seat=JUDGE).count()
        verdict = Verdict.objects.create(
            debate=debate, judge=user, probabilities=canonical, chosen_index=chosen,
            correct=chosen == debate.question.correct_index, reason=reason, seconds_spent=seconds,
            after_turn=debate.turns.count(), after_seq=debate.last_seq, scoring_rule=protocol.scoring_rule,
            score=scoring.score(protocol.scoring_rule, canonical, debate.question.correct_index,
                                turns=debater_turns, turn_penalty=protocol.turn_penalty),
            client_id=client_id or "")
        debate.status = Debate.COMPLETE
        events = record_events(debate, [Event("verdict_given", "all", {"status": debate.status})])
        return verdict, events


def checked_judgment(debate: Debate, probabilities, reason: str, seconds_spent, client_id: str):
    """Validates a final judgment, live or offline: (canonical probabilities, chosen answer, reason,
    seconds). Raises Refused with a clear message for anything wrong."""
    if len(client_id or "") > MAX_CLIENT_ID:
        raise Refused("bad_client_id", f"client_id may have at most {MAX_CLIENT_ID} characters")
    canonical = list(validate_probabilities(to_canonical(debate, probabilities), len(debate.question.answers)))
    chosen = _chosen_answer(canonical)
    check_text(reason=reason, client_id=client_id)
    reason = (reason or "").strip()
    if not reason:
        raise Refused("reason_required", "write a short reason for your verdict")
    if len(reason) > MAX_REASON:
        raise Refused("too_long", f"a reason may have at most {MAX_REASON} characters")
    return canonical, chosen, reason, _seconds(seconds_spent)


def _chosen_answer(probabilities: list[float]) -> int:
    top = max(probabilities)
    leaders = [i for i, p in enumerate(probabilities) if abs(p - top) < 1e-9]
    if len(leaders) > 1:
        raise Refused("no_choice", "a verdict must favour one answer: the top probabilities are tied")
    return leaders[0]


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
