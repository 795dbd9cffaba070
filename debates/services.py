"""The one write path for debates. Pages, websocket messages and Celery tasks that do the same
thing call the same function here, which validates, saves in one transaction and returns the
stored events; the caller then publishes them (debates.live.publish)."""

import random
from dataclasses import replace
from datetime import timedelta

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from . import background, notices, quotes, signals
from .models import Debate, DebateEvent, Participant, Question, Turn
from .pixel.board import SIDE
from .protocol import JUDGE, JUDGE_FEEDBACK, SIMULTANEOUS, Action, Event, Protocol, Refused

MAX_CLIENT_ID = 64
MAX_PRIVATE_NOTE = 5_000


def check_text(**fields) -> None:
    """JSON and form posts can carry NUL characters and lone surrogates, which PostgreSQL cannot
    store: refuse them here instead of failing in the database."""
    for name, value in fields.items():
        if isinstance(value, str) and not _storable(value):
            raise Refused(
                "bad_text",
                f"{name.replace('_', ' ')} contains characters that cannot be stored "
                "(NUL or a broken Unicode surrogate)",
            )


def _storable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return "\x00" not in text


def number_events(debate: Debate, events: list[Event]) -> list[DebateEvent]:
    """Unsaved events numbered after the debate's last one (debate.last_seq moves on; the caller
    saves both). Bulk writers number many debates' events here and save them at once."""
    numbered = []
    for event in events:
        debate.last_seq += 1
        numbered.append(
            DebateEvent(debate=debate, seq=debate.last_seq, kind=event.kind, audience=event.audience, data=event.data)
        )
    return numbered


def record_events(debate: Debate, events: list[Event]) -> list[DebateEvent]:
    """Number and save events for a debate locked by the caller (select_for_update)."""
    stored = number_events(debate, events)
    DebateEvent.objects.bulk_create(stored)
    debate.save(update_fields=["last_seq", "status", "turn_deadline", "started_at", "ended_at", "engine_state"])
    return stored


def create_debate(
    question: Question,
    protocol: Protocol,
    debaters: dict,
    judge=None,
    observers=(),
    created_by=None,
    answer_order=None,
    seed=None,
) -> Debate:
    """debaters: {seat: (user or None, answer_index)}. Answer display order is shuffled unless given."""
    if set(debaters) != set(protocol.debaters):
        raise Refused("bad_seats", f"this protocol needs debaters {', '.join(protocol.debaters)}")
    answer_count = len(question.answers)
    for seat, (_, answer_index) in debaters.items():
        if not 0 <= answer_index < answer_count:
            raise Refused("bad_answer", f"debater {seat} must argue for one of the {answer_count} answers")
    people = (
        [user for user, _ in debaters.values() if user is not None] + [judge] * (judge is not None) + list(observers)
    )
    if len({user.pk for user in people}) != len(people):
        raise Refused("same_person", "one person can hold only one seat in a debate")
    if answer_order is not None and sorted(answer_order) != list(range(answer_count)):
        raise Refused("bad_answer_order", f"answer_order must list each of the {answer_count} answers once")
    if answer_order is None:
        answer_order = list(range(answer_count))
        random.Random(seed).shuffle(answer_order)
    with transaction.atomic():
        debate = Debate.objects.create(
            question=question, protocol=protocol.to_dict(), created_by=created_by, answer_order=list(answer_order)
        )
        for seat, (user, answer_index) in debaters.items():
            Participant.objects.create(debate=debate, seat=seat, user=user, answer_index=answer_index)
        if judge is not None:
            Participant.objects.create(debate=debate, seat=JUDGE, user=judge)
        for user in observers:
            Participant.objects.create(debate=debate, seat=Participant.OBSERVER, user=user)
        notices.tell_lobby_changed(debate, [user.pk for user in people])
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
        _schedule_agent_turns(debate, engine, newly_expected=engine.expected_seats())
        notices.tell_lobby_changed(debate, debate.participants.exclude(user=None).values_list("user_id", flat=True))
        _tell_people_whose_turn(debate, engine.expected_seats())
        return record_events(debate, [Event("debate_started", "all", {}), _turn_state(debate, engine)])


def submit_action(
    debate_id: int,
    user,
    *,
    kind: str,
    text: str = "",
    probabilities=None,
    end_debate=False,
    client_id: str = "",
    private_note: str = "",
    payload=None,
    seat: str | None = None,
    reveal: int | None = None,
    rectangles=None,
):
    """A seated person's speech or feedback. Returns (turn, new events); a retry with the same
    client_id returns the turn already stored and no events."""
    if kind not in ("speech", "feedback"):
        raise Refused("bad_kind", "an action is a speech or feedback")
    if len(client_id) > MAX_CLIENT_ID:
        raise Refused("bad_client_id", f"client_id may have at most {MAX_CLIENT_ID} characters")
    if len(private_note) > MAX_PRIVATE_NOTE:
        raise Refused("too_long", f"a private note may have at most {MAX_PRIVATE_NOTE} characters")
    check_text(text=text, private_note=private_note, client_id=client_id)
    with transaction.atomic():
        debate = (
            Debate.objects.select_for_update(of=("self",))
            .select_related("question")
            .prefetch_related(Prefetch("participants", queryset=Participant.objects.select_related("user")))
            .get(pk=debate_id)
        )
        participant = _seat_for(debate, user, seat)
        if client_id:
            existing = debate.turns.filter(seat=participant.seat, client_id=client_id).first()
            if existing:
                return existing, []
        _require_live(debate)
        if probabilities is not None:
            probabilities = to_canonical(debate, probabilities)
        action = Action(
            seat=participant.seat,
            kind=kind,
            text=text or "",
            probabilities=tuple(probabilities) if probabilities is not None else None,
            end_debate=bool(end_debate),
            reveal=reveal,
        )
        if rectangles:
            payload = dict(payload or {}, rectangles=_checked_rectangles(debate, rectangles))
        return _apply(
            debate, action, author=user, client_id=client_id, private_note=private_note, payload=payload or {}
        )


def time_out_turn(debate_id: int) -> list[DebateEvent]:
    """Called when a turn's deadline may have passed: records every waiting person debater as timed
    out. AI seats are not held to the clock: their turn ends with a speech or a recorded failure
    (see debates.sweep for why and how a lost AI turn is run again)."""
    with transaction.atomic():
        debate = Debate.objects.select_for_update(of=("self",)).select_related("question").get(pk=debate_id)
        if debate.status != Debate.LIVE or debate.turn_deadline is None or debate.turn_deadline > timezone.now():
            return []
        events = []
        engine = debate.engine()
        ai_seats = set(debate.participants.filter(agent__isnull=False).values_list("seat", flat=True))
        for seat in engine.expected_seats():
            if seat == JUDGE:
                break
            if seat in ai_seats:
                continue
            events += _apply(debate, Action(seat=seat, kind="timeout"), author=None)[1]
            engine = debate.engine()
        return events


def submit_agent_turn(
    debate_id: int,
    seat: str,
    *,
    text: str,
    expected_round: int,
    client_id: str,
    payload=None,
    reveal: int | None = None,
    kind: str = "speech",
    probabilities=None,
    end_debate: bool = False,
):
    """An AI seat's speech (or an AI judge's feedback: kind="feedback", probabilities in canonical
    order), through the same checks as a person's. Returns (turn, new events); a retry with the
    same client_id returns the turn already stored and no events."""
    if kind not in ("speech", "feedback"):
        raise Refused("bad_kind", "an action is a speech or feedback")
    with transaction.atomic():
        debate = Debate.objects.select_for_update(of=("self",)).select_related("question").get(pk=debate_id)
        _agent_seat(debate, seat)
        existing = debate.turns.filter(seat=seat, client_id=client_id).first()
        if existing:
            return existing, []
        _require_live(debate)
        _require_round(debate, expected_round)
        action = Action(
            seat=seat,
            kind=kind,
            text=text,
            reveal=reveal,
            end_debate=bool(end_debate),
            probabilities=tuple(probabilities) if probabilities is not None else None,
        )
        return _apply(debate, action, author=None, client_id=client_id, payload=payload or {})


def forfeit_agent_turn(debate_id: int, seat: str, *, expected_round: int, client_id: str, code: str, message: str):
    """An AI turn that cannot be produced (budget spent, back-end failing): the seat's turn is
    recorded as timed out, with the reason, so the debate goes on. Returns the new events."""
    with transaction.atomic():
        debate = Debate.objects.select_for_update(of=("self",)).select_related("question").get(pk=debate_id)
        _agent_seat(debate, seat)
        if debate.turns.filter(seat=seat, client_id=client_id).exists() or debate.status != Debate.LIVE:
            return []
        engine = debate.engine()
        if engine.round_index != expected_round or seat not in engine.expected_seats():
            return []
        failure = record_events(
            debate,
            [Event("ai_turn_failed", "all", {"seat": seat, "round": expected_round, "code": code, "message": message})],
        )
        _, events = _apply(
            debate,
            Action(seat=seat, kind="timeout"),
            author=None,
            client_id=client_id,
            payload={"agent_error": {"code": code, "message": message}},
        )
        return failure + events


def _agent_seat(debate: Debate, seat: str) -> Participant:
    participant = debate.participants.filter(seat=seat).first()
    if participant is None or not participant.agent:
        raise Refused("not_ai_seat", f"seat {seat} is not an AI seat in this debate")
    return participant


def _require_round(debate: Debate, expected_round: int) -> None:
    engine = debate.engine()
    if engine.round_index != expected_round:
        raise Refused(
            "wrong_round",
            f"this turn was for round {expected_round + 1}; the debate is in round {engine.round_index + 1}",
        )


def _apply(debate: Debate, action: Action, author, client_id="", private_note="", payload=None):
    engine = debate.engine()
    round_before, kind_before = engine.round_index, engine.round_kind
    expected_before = engine.expected_seats()
    if action.kind == "speech" and action.seat in expected_before:
        action, payload = _check_quotes(debate, action, payload)
    events = engine.apply(action)
    debate.engine_state = engine.to_state()
    if action.reveal is not None:
        payload = dict(payload or {}, reveal=_revealed_pixel(debate, action.reveal))
        events = [
            Event(e.kind, e.audience, dict(e.data, reveal=payload["reveal"])) if "reveal" in e.data else e
            for e in events
        ]
    if (payload or {}).get("rectangles"):  # claims drawn on the image reach every screen with the speech
        events = [
            Event(e.kind, e.audience, dict(e.data, rectangles=payload["rectangles"])) if e.kind == "speech" else e
            for e in events
        ]
    turn = Turn.objects.create(
        debate=debate,
        round_index=round_before,
        seat=action.seat,
        kind=action.kind,
        text=action.text,
        probabilities=list(action.probabilities) if action.probabilities else None,
        end_debate=action.end_debate,
        private_note=private_note,
        payload=payload or {},
        client_id=client_id,
        author=author,
    )
    if engine.finished:
        debate.status = Debate.AWAITING_VERDICT
        debate.ended_at = timezone.now()
        debate.turn_deadline = None
        transaction.on_commit(lambda: signals.announce_finished(Debate, debate.pk))
        notices.after_commit(notices.tell_debate_ended, debate.pk)
    elif not (kind_before == SIMULTANEOUS and engine.round_index == round_before):
        _set_deadline(debate, engine)
    client_events = [_for_clients(debate, _with_quote_status(debate, e, turn)) for e in events]
    client_events.append(_turn_state(debate, engine))
    newly_expected = [
        s for s in engine.expected_seats() if engine.round_index != round_before or s not in expected_before
    ]
    _schedule_agent_turns(debate, engine, newly_expected)
    if not engine.finished:
        _tell_people_whose_turn(debate, newly_expected)
    return turn, record_events(debate, client_events)


def _revealed_pixel(debate: Debate, pixel: int) -> dict:
    """What everyone may see of a revealed pixel: where it is and its grey level."""
    return {"pixel": pixel, "value": debate.question.pixel_value(pixel)}


MAX_RECTANGLES = 20


def _checked_rectangles(debate: Debate, rectangles) -> list[list[int]]:
    """Rectangles drawn on an image are claims, not evidence: [top, left, bottom, right] in 0..27."""
    if debate.question.kind != debate.question.KIND_IMAGE:
        raise Refused("no_image", "rectangles can only be drawn in image debates")
    if not isinstance(rectangles, list) or len(rectangles) > MAX_RECTANGLES:
        raise Refused("bad_rectangles", f"send at most {MAX_RECTANGLES} rectangles as [top, left, bottom, right]")
    checked = []
    for r in rectangles:
        if (
            not isinstance(r, list)
            or len(r) != 4
            or any(isinstance(v, bool) or not isinstance(v, int) for v in r)
            or not all(0 <= v < SIDE for v in r)
            or r[0] > r[2]
            or r[1] > r[3]
        ):
            raise Refused(
                "bad_rectangles", f"a rectangle is [top, left, bottom, right] with 0 <= top <= bottom <= {SIDE - 1}"
            )
        checked.append(list(r))
    return checked


def _check_quotes(debate: Debate, action: Action, payload) -> tuple[Action, dict]:
    """A speech's quotes: spans written out, each checked against the hidden passage, budgets
    enforced (Refused when over). The statuses go into the turn's payload, never the client's."""
    protocol = debate.get_protocol()
    text, found = quotes.check_speech(
        action.text,
        debate.question.passage,
        protocol.quote_chars_per_turn,
        _quote_chars_left_in_debate(debate, action.seat),
    )
    payload = {k: v for k, v in (payload or {}).items() if k != "quotes"}
    if found:
        payload["quotes"] = [q.to_dict() for q in found]
    return replace(action, text=text), payload


def quote_chars_left(debate: Debate, seat: str) -> int | None:
    """Characters of quotes the seat's next speech may use (None: no limit)."""
    per_turn = debate.get_protocol().quote_chars_per_turn
    in_debate = _quote_chars_left_in_debate(debate, seat)
    limits = [n for n in (per_turn, in_debate) if n is not None]
    return max(0, min(limits)) if limits else None


def _quote_chars_left_in_debate(debate: Debate, seat: str) -> int | None:
    limit = debate.get_protocol().quote_chars_per_debate
    if limit is None:
        return None
    earlier = debate.turns.filter(seat=seat, kind="speech").values_list("payload", flat=True)
    return limit - sum(quotes.quote_chars(p.get("quotes", [])) for p in earlier)


def _with_quote_status(debate: Debate, event: Event, turn: Turn) -> Event:
    """Speech events carry each quote's text and status, never its place in the hidden passage."""
    if event.kind == "speech":
        return Event(event.kind, event.audience, dict(event.data, quotes=_public_quotes(turn.payload)))
    if event.kind == "speeches_revealed":
        payloads = dict(
            debate.turns.filter(round_index=event.data["round"], kind="speech").values_list("seat", "payload")
        )
        speeches = [dict(s, quotes=_public_quotes(payloads.get(s["seat"]) or {})) for s in event.data["speeches"]]
        return Event(event.kind, event.audience, dict(event.data, speeches=speeches))
    return event


def _public_quotes(payload: dict) -> list[dict]:
    return [{"text": q["text"], "status": q["status"]} for q in payload.get("quotes", [])]


def _schedule_agent_turns(debate: Debate, engine, newly_expected) -> None:
    """AI seats that have just become expected get their turn run after the commit."""
    if engine.finished or not newly_expected:
        return
    ai_seats = {p.seat for p in debate.participants.all() if p.seat in newly_expected and p.agent}
    if not ai_seats:
        return
    round_index = engine.round_index
    for seat in sorted(ai_seats - {JUDGE}):
        background.dispatch("debates.tasks.run_ai_turn", debate.pk, seat, round_index)
    if JUDGE in ai_seats:  # AI judges are judging's: it listens for this
        transaction.on_commit(lambda: signals.announce_ai_judge_expected(Debate, debate.pk, round_index))


def _tell_people_whose_turn(debate: Debate, newly_expected) -> None:
    """People (not AI seats) whose turn has just started are told after the commit (debates.notices)."""
    people = [p for p in debate.participants.all() if p.seat in newly_expected and p.user_id and not p.agent]
    if people:
        mailable = [p.seat for p in people if p.is_debater and p.user.email]
        notices.after_commit(notices.tell_whose_turn, debate.pk, {p.seat: p.user_id for p in people}, mailable)


def _for_clients(debate: Debate, event: Event) -> Event:
    """Probabilities leave the server in the debate's display order, never the canonical one."""
    if "probabilities" in event.data:
        data = dict(event.data, probabilities=to_display(debate, event.data["probabilities"]))
        return Event(event.kind, event.audience, data)
    return event


def _turn_state(debate: Debate, engine) -> Event:
    return Event(
        "turn_state",
        "all",
        {
            "status": debate.status,
            "round": engine.round_index if not engine.finished else None,
            "round_kind": engine.round_kind,
            "waiting_for": list(engine.expected_seats()),
            "deadline": debate.turn_deadline.isoformat() if debate.turn_deadline else None,
        },
    )


def _set_deadline(debate: Debate, engine) -> None:
    seconds = engine.protocol.turn_seconds
    if not seconds or engine.finished or engine.round_kind == JUDGE_FEEDBACK:
        debate.turn_deadline = None
        return
    debate.turn_deadline = timezone.now() + timedelta(seconds=seconds)
    background.dispatch("debates.tasks.expire_turn", debate.pk, eta=debate.turn_deadline)


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
