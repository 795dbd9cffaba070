"""The one write path for debates. Pages, websocket messages and Celery tasks that do the same
thing call the same function here, which validates, saves in one transaction and returns the
stored events; the caller then publishes them (debates.live.publish)."""
import random
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from .models import Debate, DebateEvent, Participant, Question, Turn
from .protocol import JUDGE, JUDGE_FEEDBACK, SIMULTANEOUS, Action, Event, Protocol, Refused

MAX_CLIENT_ID = 64
MAX_PRIVATE_NOTE = 5_000


def record_events(debate: Debate, events: list[Event]) -> list[DebateEvent]:
    """Number and save events for a debate locked by the caller (select_for_update)."""
    stored = []
    for event in events:
        debate.last_seq += 1
        stored.append(DebateEvent(debate=debate, seq=debate.last_seq, kind=event.kind,
                                  audience=event.audience, data=event.data))
    DebateEvent.objects.bulk_create(stored)
    debate.save(update_fields=["last_seq", "status", "turn_deadline", "started_at", "ended_at"])
    return stored


def create_debate(question: Question, protocol: Protocol, debaters: dict, judge=None, observers=(),
                  created_by=None, answer_order=None, seed=None) -> Debate:
    """debaters: {seat: (user or None, answer_index)}. Answer display order is shuffled unless given."""
    if set(debaters) != set(protocol.debaters):
        raise Refused("bad_seats", f"this protocol needs debaters {', '.join(protocol.debaters)}")
    answer_count = len(question.answers)
    for seat, (_, answer_index) in debaters.items():
        if not 0 <= answer_index < answer_count:
            raise Refused("bad_answer", f"debater {seat} must argue for one of the {answer_count} answers")
    if answer_order is None:
        answer_order = list(range(answer_count))
        random.Random(seed).shuffle(answer_order)
    with transaction.atomic():
        debate = Debate.objects.create(question=question, protocol=protocol.to_dict(), created_by=created_by,
                                       answer_order=list(answer_order))
        for seat, (user, answer_index) in debaters.items():
            Participant.objects.create(debate=debate, seat=seat, user=user, answer_index=answer_index)
        if judge is not None:
            Participant.objects.create(debate=debate, seat=JUDGE, user=judge)
        for user in observers:
            Participant.objects.create(debate=debate, seat=Participant.OBSERVER, user=user)
    return debate


def start_debate(debate_id: int) -> list[DebateEvent]:
    with transaction.atomic():
        debate = Debate.objects.select_for_update().get(pk=debate_id)
        if debate.status != Debate.SCHEDULED:
            raise Refused("already_started", "this debate has already started")
        debate.status = Debate.LIVE
        debate.started_at = timezone.now()
        engine = debate.engine()
        _set_deadline(debate, engine)
        return record_events(debate, [Event("debate_started", "all", {}), _turn_state(debate, engine)])


def submit_action(debate_id: int, user, *, kind: str, text: str = "", probabilities=None, end_debate=False,
                  client_id: str = "", private_note: str = "", payload=None, seat: str | None = None):
    """A seated person's speech or feedback. Returns (turn, new events); a retry with the same
    client_id returns the turn already stored and no events."""
    if kind not in ("speech", "feedback"):
        raise Refused("bad_kind", "an action is a speech or feedback")
    if len(client_id) > MAX_CLIENT_ID:
        raise Refused("bad_client_id", f"client_id may have at most {MAX_CLIENT_ID} characters")
    if len(private_note) > MAX_PRIVATE_NOTE:
        raise Refused("too_long", f"a private note may have at most {MAX_PRIVATE_NOTE} characters")
    with transaction.atomic():
        debate = Debate.objects.select_for_update().select_related("question").get(pk=debate_id)
        participant = _seat_for(debate, user, seat)
        if client_id:
            existing = debate.turns.filter(seat=participant.seat, client_id=client_id).first()
            if existing:
                return existing, []
        _require_live(debate)
        if probabilities is not None:
            probabilities = to_canonical(debate, probabilities)
        action = Action(seat=participant.seat, kind=kind, text=text or "",
                        probabilities=tuple(probabilities) if probabilities is not None else None,
                        end_debate=bool(end_debate))
        return _apply(debate, action, author=user, client_id=client_id, private_note=private_note,
                      payload=payload or {})


def time_out_turn(debate_id: int) -> list[DebateEvent]:
    """Called when a turn's deadline may have passed: records every waiting debater as timed out."""
    with transaction.atomic():
        debate = Debate.objects.select_for_update().select_related("question").get(pk=debate_id)
        if debate.status != Debate.LIVE or debate.turn_deadline is None or debate.turn_deadline > timezone.now():
            return []
        events = []
        engine = debate.engine()
        for seat in engine.expected_seats():
            if seat == JUDGE:
                break
            events += _apply(debate, Action(seat=seat, kind="timeout"), author=None)[1]
            engine = debate.engine()
        return events


def _apply(debate: Debate, action: Action, author, client_id="", private_note="", payload=None):
    engine = debate.engine()
    round_before, kind_before = engine.round_index, engine.round_kind
    events = engine.apply(action)
    turn = Turn.objects.create(debate=debate, round_index=round_before, seat=action.seat, kind=action.kind,
                               text=action.text, probabilities=list(action.probabilities) if action.probabilities else None,
                               end_debate=action.end_debate, private_note=private_note, payload=payload or {},
                               client_id=client_id, author=author)
    if engine.finished:
        debate.status = Debate.AWAITING_VERDICT
        debate.ended_at = timezone.now()
        debate.turn_deadline = None
    elif not (kind_before == SIMULTANEOUS and engine.round_index == round_before):
        _set_deadline(debate, engine)
    client_events = [_for_clients(debate, e) for e in events] + [_turn_state(debate, engine)]
    return turn, record_events(debate, client_events)


def _for_clients(debate: Debate, event: Event) -> Event:
    """Probabilities leave the server in the debate's display order, never the canonical one."""
    if "probabilities" in event.data:
        data = dict(event.data, probabilities=to_display(debate, event.data["probabilities"]))
        return Event(event.kind, event.audience, data)
    return event


def _turn_state(debate: Debate, engine) -> Event:
    return Event("turn_state", "all", {
        "status": debate.status,
        "round": engine.round_index if not engine.finished else None,
        "round_kind": engine.round_kind,
        "waiting_for": list(engine.expected_seats()),
        "deadline": debate.turn_deadline.isoformat() if debate.turn_deadline else None,
    })


def _set_deadline(debate: Debate, engine) -> None:
    seconds = engine.protocol.turn_seconds
    if not seconds or engine.finished or engine.round_kind == JUDGE_FEEDBACK:
        debate.turn_deadline = None
        return
    debate.turn_deadline = timezone.now() + timedelta(seconds=seconds)
    from .tasks import schedule_turn_timeout  # tasks import this module

    deadline = debate.turn_deadline
    transaction.on_commit(lambda: schedule_turn_timeout(debate.pk, deadline))


def _seat_for(debate: Debate, user, claimed_seat: str | None) -> Participant:
    participant = debate.seat_of(user)
    if participant is None or participant.seat == Participant.OBSERVER:
        raise Refused("not_seated", "you do not have a debater or judge seat in this debate")
    if claimed_seat is not None and claimed_seat != participant.seat:
        raise Refused("wrong_seat", f"you sit in seat {participant.seat}, not {claimed_seat}")
    return participant


def _require_live(debate: Debate) -> None:
    if debate.status == Debate.SCHEDULED:
        raise Refused("not_started", "this debate has not started yet")
    if debate.status != Debate.LIVE:
        raise Refused("debate_over", "the debate is over: no more turns are accepted")


def to_canonical(debate: Debate, shown_probabilities) -> list[float]:
    """Probabilities in the order answers are shown -> the question's own answer order."""
    order = debate.shown_answer_order()
    if not isinstance(shown_probabilities, (list, tuple)) or len(shown_probabilities) != len(order):
        raise Refused("bad_probabilities", f"give one probability for each of the {len(order)} answers")
    canonical = [0.0] * len(order)
    for shown_position, answer_index in enumerate(order):
        canonical[answer_index] = shown_probabilities[shown_position]
    return canonical


def to_display(debate: Debate, canonical_probabilities) -> list[float]:
    return [canonical_probabilities[i] for i in debate.shown_answer_order()]
