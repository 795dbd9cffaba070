"""What each role may see of a debate. Every page, API response and websocket frame about a
debate is built here, so the rule 'a judge never sees hidden material, the correct answer, which
side is honest, or anything private' is enforced in one place."""

from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Q

from . import presence
from .models import RESEARCHER, Debate, DebateEvent, Experiment, Participant, has_role
from .protocol import EVERYONE, JUDGE, SIMULTANEOUS

DEBATER, JUDGE_VIEW, OBSERVER = "debater", "judge", "observer"
PRIVATE_PAYLOAD = ("candidates", "chosen", "agent", "agent_error")  # AI turns: for the author and observers
DEFAULT_BLINDING = {"aliases": True, "reveal_after_verdict": False}  # debates outside experiments
AI_ONLY_EVENTS = ("ai_turn_failed",)  # stored events that would tell a blinded viewer a seat is an AI


class Viewer:
    """Who is looking: their view (debater, judge, observer) and seat, if any. An offline judge
    has the judge's view without a seat; `user` says whose verdict may lift the blinding."""

    def __init__(self, view: str, participant: Participant | None, user=None, blind: bool = False, seat=None):
        self.view = view
        self.participant = participant
        self.user = user if user is not None else (participant.user if participant else None)
        self.blind = blind
        self._seat = seat

    @property
    def seat(self):
        return self.participant.seat if self.participant else self._seat

    @property
    def audience(self) -> str:
        """Viewers with the same audience see every event alike (see frames_by_audience)."""
        if self.view == OBSERVER:
            return OBSERVER
        return f"{self.view}:{self.seat or ''}:{'blind' if self.blind else ''}"


def viewer_for(debate: Debate, user) -> Viewer | None:
    """None when the user may not see this debate at all. A seated person gets their seat's view;
    a researcher observes only the debates of their own space (see `manages`), a platform
    administrator every debate; anybody else sees nothing."""
    participant = debate.seat_of(user) if user.is_authenticated else None
    blind = bool(blinding_of(debate)["aliases"])
    if participant is not None:
        if participant.is_debater:
            return Viewer(DEBATER, participant, blind=blind)
        if participant.seat == JUDGE:
            return Viewer(JUDGE_VIEW, participant, blind=blind)
        return Viewer(OBSERVER, participant)
    if manages(debate, user):
        return Viewer(OBSERVER, None)
    return None


def manages(debate: Debate, user) -> bool:
    """Whether the user may observe and run (start) this debate without a seat: a researcher for the
    debates they created and those of experiments they own or were given (Experiment.shared_with);
    a platform administrator (superuser) for every debate. Staff status grants nothing."""
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    if not has_role(user, RESEARCHER):
        return False
    if debate.created_by_id == user.pk:
        return True
    version = debate.experiment_version
    return version is not None and Experiment.visible_to(user).filter(pk=version.experiment_id).exists()


def managed_debates(user):
    """The debates `manages` allows, as a queryset (the lobby's list)."""
    if user.is_superuser:
        return Debate.objects.all()
    if not has_role(user, RESEARCHER):
        return Debate.objects.none()
    return Debate.objects.filter(Q(created_by=user) | Q(experiment_version__experiment__in=Experiment.visible_to(user)))


def blinding_of(debate: Debate) -> dict:
    """The experiment's blinding rules (aliases, reveal_after_verdict), or the defaults."""
    version = debate.experiment_version
    return {**DEFAULT_BLINDING, **((version.definition or {}).get("blinding") or {} if version else {})}


def event_for(event: DebateEvent, viewer: Viewer) -> dict:
    """An event the viewer may not see becomes a 'noop' frame, so sequence numbers never skip."""
    hidden = event.audience != EVERYONE and event.audience != viewer.seat and viewer.view != OBSERVER
    if (
        hidden
        or (viewer.blind and event.kind in AI_ONLY_EVENTS)
        or (viewer.view == JUDGE_VIEW and event.kind == "speech_sealed")
    ):
        return {"type": "event", "seq": event.seq, "kind": "noop", "data": {}}
    data = event.data
    if viewer.view == JUDGE_VIEW and event.kind == "turn_state" and data.get("round_kind") == SIMULTANEOUS:
        data = dict(data, waiting_for=_simultaneous_waiting(event.debate))
    return {"type": "event", "seq": event.seq, "kind": event.kind, "data": data, "at": event.created_at.isoformat()}


def frames_by_audience(debate: Debate, event: DebateEvent) -> tuple[list[dict], dict[str, int]]:
    """An event as every audience of the debate sees it, computed once for all its sockets: the
    distinct frames, and for each audience the index of its frame."""
    viewers = [Viewer(OBSERVER, None)] + [
        Viewer(view, None, blind=blind, seat=seat)
        for blind in (False, True)
        for view, seat in [(JUDGE_VIEW, JUDGE), (JUDGE_VIEW, None)]
        + [(DEBATER, s) for s in debate.get_protocol().debaters]
    ]
    frames, index = [], {}
    for viewer in viewers:
        frame = event_for(event, viewer)
        if frame not in frames:
            frames.append(frame)
        index[viewer.audience] = frames.index(frame)
    return frames, index


def _simultaneous_waiting(debate: Debate) -> list[str]:
    """The judge does not learn who handed in a simultaneous speech first: until the round closes,
    every debater is shown as still writing, and no sealed speech is announced or timed."""
    return list(debate.get_protocol().debaters)


def events_after(debate: Debate, viewer: Viewer, seq: int) -> list[dict]:
    return [event_for(e, viewer) for e in debate.events.filter(seq__gt=seq).order_by("seq")]


@contextmanager
def one_moment():
    """Reads that all see the database as it was at one moment. A state's sequence number and its
    turns must agree: read a moment apart, a speech saved in between is in the turns while its
    event is still to come, and the viewer shows it twice."""
    with transaction.atomic():
        if connection.vendor == "postgresql" and not _ran_queries_in_this_transaction():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield  # SQLite: a transaction's reads already see one moment


def _ran_queries_in_this_transaction() -> bool:
    # An outer atomic block (a test's, a caller's) may have read already; its isolation is fixed.
    return len(connection.atomic_blocks) > 1


def state_for(debate: Debate, viewer: Viewer) -> dict:
    """The whole debate as the viewer may see it, read at one moment (`debate` is read again)."""
    with one_moment():
        debate.refresh_from_db()
        return _state(debate, viewer)


def _state(debate: Debate, viewer: Viewer) -> dict:
    question = debate.question
    protocol = debate.get_protocol()
    order = debate.shown_answer_order()
    shown_position = {answer_index: pos for pos, answer_index in enumerate(order)}
    engine = debate.engine()
    participants = list(debate.participants.exclude(seat=Participant.OBSERVER).select_related("user").order_by("seat"))
    if not protocol.has_speeches:  # direct judging: the judge answers from public material alone
        participants = [p for p in participants if not p.is_debater]
    state = {
        "type": "state",
        "seq": debate.last_seq,
        "debate": debate.pk,
        "status": debate.status,
        "view": viewer.view,
        "my_seat": viewer.seat,
        "question": {
            "kind": question.kind,
            "text": question.text,
            "public_material": question.public_material,
            "answers": [question.answers[i] for i in order],
        },
        "protocol": {
            "rounds": list(protocol.rounds),
            "char_limit": protocol.char_limit,
            "turn_seconds": protocol.turn_seconds,
            "judge_may_end": protocol.judge_may_end,
            "quote_chars_per_turn": protocol.quote_chars_per_turn,
            "quote_chars_per_debate": protocol.quote_chars_per_debate,
        },
        "format": debate_format(debate, protocol),
        "seats": _seats(debate, viewer, participants, shown_position),
        "round": None if engine.finished else engine.round_index,
        "round_kind": engine.round_kind,
        "waiting_for": _waiting_for(debate, viewer, engine),
        "deadline": debate.turn_deadline.isoformat() if debate.turn_deadline else None,
        "turns": _transcript(debate, viewer, engine, protocol),
    }
    state["quotes"] = _quotes_panel(state["turns"])
    state["judge_question"] = judge_question(state["turns"])
    if viewer.view in (DEBATER, OBSERVER):
        state["hidden"] = {"material": question.passage, "image": question.hidden_image}
    if viewer.view == DEBATER:
        state["my_answer"] = shown_position[viewer.participant.answer_index]
    if viewer.view == OBSERVER:
        state["correct_answer"] = shown_position[question.correct_index]
        state["honest_seats"] = [p.seat for p in participants if p.answer_index == question.correct_index]
    return state


def _waiting_for(debate: Debate, viewer: Viewer, engine) -> list[str]:
    if debate.status != Debate.LIVE:
        return []
    if viewer.view == JUDGE_VIEW and engine.round_kind == SIMULTANEOUS:
        return _simultaneous_waiting(debate)
    return list(engine.expected_seats())


def debate_format(debate: Debate, protocol) -> str:
    """debate, consultancy, direct or interactive: as the experiment named it, else from the seats."""
    named = (debate.provenance or {}).get("format")
    if named:
        return named
    if not protocol.has_speeches:
        return "direct"
    return "consultancy" if len(protocol.debaters) == 1 else "debate"


def judge_question(turns: list[dict]) -> dict | None:
    """The comment of the judge's latest feedback, which the debaters answer in their next speeches
    (None when the latest feedback had no comment)."""
    feedback = [t for t in turns if t["kind"] == "feedback"]
    if not feedback or not (feedback[-1].get("text") or "").strip():
        return None
    return {"round": feedback[-1]["round"], "text": feedback[-1]["text"]}


def identities_revealed(debate: Debate, viewer: Viewer) -> bool:
    """Observers always know who debated. Others see aliases, unless the experiment turns aliases
    off, or lets a judge learn identities after their verdict (debaters: after the debate's)."""
    if viewer.view == OBSERVER:
        return True
    rules = blinding_of(debate)
    if not rules["aliases"]:
        return True
    if not rules["reveal_after_verdict"]:
        return False
    if viewer.view == JUDGE_VIEW:
        return viewer.user is not None and debate.verdicts.filter(judge=viewer.user).exists()
    return debate.status == Debate.COMPLETE


def identity(participant: Participant) -> str:
    if participant.agent:
        return f"AI ({participant.agent.get('model') or participant.agent.get('backend') or 'model'})"
    return participant.user.get_username() if participant.user else participant.display_name


def _seats(debate: Debate, viewer: Viewer, participants: list, shown_position: dict) -> list[dict]:
    revealed = identities_revealed(debate, viewer)
    online = set(presence.online_seats(debate.pk))
    # An AI seat is always there: shown offline, it would tell a blinded viewer it is not a person.
    return [_seat(p, shown_position, revealed, p.seat in online or p.agent is not None) for p in participants]


def _seat(participant: Participant, shown_position: dict, revealed: bool = True, online: bool = False) -> dict:
    seat = {"seat": participant.seat, "name": participant.display_name, "online": online}
    if revealed:  # a blinded viewer is not even told which seats are AIs
        seat["ai"] = participant.agent is not None
        if participant.is_debater:
            seat["identity"] = identity(participant)
    if participant.is_debater:
        seat["answer"] = shown_position[participant.answer_index]
    return seat


def _transcript(debate: Debate, viewer: Viewer, engine, protocol) -> list[dict]:
    """Turns the viewer may see; a simultaneous speech of the current round stays sealed for
    everybody but its author until every debater's speech is in."""
    open_round = engine.round_index if not engine.finished and engine.round_kind == SIMULTANEOUS else None
    simultaneous_rounds = {i for i, kind in enumerate(protocol.rounds) if kind == SIMULTANEOUS}
    turns = []
    for turn in _in_reading_order(debate.turns.order_by("id"), protocol, simultaneous_rounds):
        item = {"round": turn.round_index, "seat": turn.seat, "kind": turn.kind, "at": turn.created_at.isoformat()}
        sealed = turn.round_index == open_round and turn.kind == "speech"
        mine = viewer.seat == turn.seat
        if viewer.view == JUDGE_VIEW and turn.round_index in simultaneous_rounds:
            if sealed:
                continue
            del item["at"]
        if sealed and not mine:
            item["sealed"] = True
        else:
            item["text"] = turn.text
            if turn.probabilities:
                item["probabilities"] = [turn.probabilities[i] for i in debate.shown_answer_order()]
                item["end_debate"] = turn.end_debate
            payload = _visible_payload(turn.payload, viewer, mine)
            if payload:
                item["payload"] = payload
        if mine and turn.private_note:
            item["private_note"] = turn.private_note
        turns.append(item)
    return turns


def _in_reading_order(turns, protocol, simultaneous_rounds) -> list:
    """Turns in the order they were given, except that a simultaneous round's speeches follow the
    speaking order, not the order they were handed in."""
    position = {seat: i for i, seat in enumerate(protocol.order)}
    numbered = list(enumerate(turns))
    numbered.sort(
        key=lambda item: (
            item[1].round_index,
            position.get(item[1].seat, len(position)) if item[1].round_index in simultaneous_rounds else 0,
            item[0],
        )
    )
    return [turn for _, turn in numbered]


def ephemeral_for(frame: dict, viewer: Viewer) -> dict | None:
    """Frames that are not stored (presence, AI writing progress), as this viewer may see them.
    A blinded viewer gets no AI frames at all: a person's writing is never streamed, so any of them
    would tell that a seat is an AI (and retries and failures which back-end plays it). Other
    seats get nothing of a sealed (simultaneous) round, not even its progress; observers get
    everything."""
    if not frame.get("type", "").startswith("ai_") or viewer.view == OBSERVER:
        return frame
    if viewer.blind or frame.get("sealed"):
        return None
    return frame


def _visible_payload(payload: dict, viewer: Viewer, mine: bool) -> dict:
    """Others never see an AI turn's unused candidates or settings; a judge sees each quote's text
    and status but not where it sits in the hidden passage."""
    if not payload or viewer.view == OBSERVER or mine:
        return payload
    visible = {k: v for k, v in payload.items() if k not in PRIVATE_PAYLOAD}
    if viewer.view == JUDGE_VIEW and "quotes" in visible:
        visible["quotes"] = [{"text": q["text"], "status": q["status"]} for q in visible["quotes"]]
    return visible


def _quotes_panel(turns: list[dict]) -> list[dict]:
    """Every quote the viewer may see, in the order it was made."""
    return [
        dict(quote, round=turn["round"], seat=turn["seat"])
        for turn in turns
        for quote in turn.get("payload", {}).get("quotes", [])
    ]
