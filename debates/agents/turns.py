"""Running an AI seat's turn inside the platform: read what the seat may see, write the speech
(streaming it to the debate's room), save it through the services, publish the events.
Called by the Celery task debates.tasks.run_ai_turn, or a thread in the embedded default."""

import logging
import time

from .. import live, quotes, services, snapshots
from ..experiment_spec import BACKENDS as ALL_BACKENDS
from ..models import Debate, Participant
from ..protocol import JUDGE, SEQUENTIAL, Refused
from .config import BACKENDS, AgentConfig, Budget, Usage
from .debater import Callbacks, TurnContext, write_turn
from .errors import AgentError, AgentUnavailable

log = logging.getLogger(__name__)
TOO_LATE = ("wrong_round", "debate_over", "not_your_turn", "not_started")
FRAME_INTERVAL = 0.05  # seconds: tokens are sent in batches, at most 20 frames a second per turn


def client_id_for(round_index: int, seat: str) -> str:
    return f"ai-{round_index}-{seat}"


def play_turn(debate_id: int, seat: str, expected_round: int) -> str:
    """Plays the turn if `seat` is still expected in `expected_round`; otherwise does nothing.
    Returns what happened. Raises AgentUnavailable when the back-end keeps failing (retry later)."""
    debate = Debate.objects.select_related("question").filter(pk=debate_id).first()
    if debate is None:
        return "no_such_debate"
    participant = debate.participants.filter(seat=seat).first()
    if participant is None or not participant.agent:
        return "not_an_ai_seat"
    if participant.agent.get("backend") in set(ALL_BACKENDS) - set(BACKENDS) or seat == JUDGE:
        return "played_elsewhere"  # the pixel debater has its own player; judging plays AI judges
    if debate.turns.filter(seat=seat, client_id=client_id_for(expected_round, seat)).exists():
        return "already_played"
    engine = debate.engine()
    if debate.status != Debate.LIVE or engine.round_index != expected_round or seat not in engine.expected_seats():
        return "not_expected"
    room = _Room(debate_id, seat, expected_round)
    try:
        config = AgentConfig.from_dict(participant.agent)
        context = turn_context(debate, participant, engine)
        room.started(
            streams_text=config.best_of_n == 1 and engine.round_kind == SEQUENTIAL,
            sealed=engine.round_kind != SEQUENTIAL,
            char_limit=context.char_limit,
            quote_chars=context.quote_chars,
        )
        result = write_turn(config, context, Budget(config, spent_by(debate, seat)), room)
        room.flush(final=result.text)
    except AgentUnavailable as error:
        room.send({"type": "ai_turn_retry", "code": error.code, "message": error.message})
        raise
    except AgentError as error:
        return give_up(debate_id, seat, expected_round, error)
    try:
        _, events = services.submit_agent_turn(
            debate_id,
            seat,
            text=result.text,
            expected_round=expected_round,
            client_id=client_id_for(expected_round, seat),
            payload=result.payload(),
        )
    except Refused as refused:
        if refused.code in TOO_LATE:
            return "too_late"
        return give_up(debate_id, seat, expected_round, AgentError(refused.code, refused.message))
    live.publish(debate_id, events)
    return "played"


def give_up(debate_id: int, seat: str, expected_round: int, error: AgentError) -> str:
    """The seat forfeits the turn (recorded as timed out, with the reason) so the debate goes on."""
    log.warning("AI turn failed: debate %s seat %s round %s: %s", debate_id, seat, expected_round, error.message)
    _Room(debate_id, seat, expected_round).send(
        {"type": "ai_turn_failed", "code": error.code, "message": error.message}
    )
    events = services.forfeit_agent_turn(
        debate_id,
        seat,
        expected_round=expected_round,
        client_id=client_id_for(expected_round, seat),
        code=error.code,
        message=error.message,
    )
    live.publish(debate_id, events)
    return f"failed: {error.code}"


def withdraw(debate_id: int, seat: str, expected_round: int) -> None:
    """An attempt at the turn failed or is being restarted: every screen drops the text it streamed."""
    _Room(debate_id, seat, expected_round).send({"type": "ai_turn_withdrawn"})


def spent_by(debate: Debate, seat: str) -> Usage:
    """Tokens this seat's earlier turns used (the per-debate budget counts them)."""
    spent = Usage()
    for payload in debate.turns.filter(seat=seat).values_list("payload", flat=True):
        spent.add(Usage.from_dict((payload.get("agent") or {}).get("usage")))
    return spent


def turn_context(debate: Debate, participant: Participant, engine) -> TurnContext:
    question = debate.question
    state = snapshots.state_for(debate, snapshots.Viewer(snapshots.DEBATER, participant))
    answers = state["question"]["answers"]
    my_answer = question.answers[participant.answer_index]
    opponents = [p.answer_index for p in debate.participants.all() if p.is_debater and p.pk != participant.pk]
    others = [question.answers[i] for i in opponents] or [
        a for i, a in enumerate(question.answers) if i != participant.answer_index
    ]
    protocol = engine.protocol
    return TurnContext(
        seat=participant.seat,
        question=question.text,
        answers=answers,
        my_answer=my_answer,
        opponent_answer=" or ".join(others),
        passage=question.passage,
        transcript=render_transcript(state, participant.seat),
        round=engine.round_index + 1,
        char_limit=protocol.char_limit,
        quote_chars=services.quote_chars_left(debate, participant.seat),
        already_quoted=[
            q["text"]
            for t in state["turns"]
            if t["seat"] == participant.seat
            for q in t.get("payload", {}).get("quotes", [])
        ],
    )


def render_transcript(state: dict, my_seat: str | None) -> str:
    """The turns in `state` as plain text for a model (sealed speeches are left out)."""
    names = {s["seat"]: s["name"] for s in state["seats"]}
    answers = state["question"]["answers"]
    lines = []
    for turn in state["turns"]:
        if turn.get("sealed"):
            continue
        who = "You" if turn["seat"] == my_seat else names.get(turn["seat"], turn["seat"])
        heading = f"Round {turn['round'] + 1}, {who}"
        if turn["kind"] == "timeout":
            lines.append(f"{heading}: (ran out of time)")
        elif turn.get("probabilities"):
            beliefs = ", ".join(f"{a}: {p:.0%}" for a, p in zip(answers, turn["probabilities"]))
            comment = f" Comment: {turn['text']}" if turn.get("text") else ""
            lines.append(f"{heading} (judge's current belief: {beliefs}).{comment}")
        else:
            lines.append(f"{heading}: {turn.get('text', '')}")
    return "\n\n".join(lines)


class _Room(Callbacks):
    """Frames about an AI turn in progress for the debate's room (not stored). Text goes out only
    when the speech will be public as soon as it is saved: not in sealed (simultaneous) rounds and
    not for best-of-N drafts, which only the author may see. What streams is what will be stored:
    the draft as the protocol will cut it (quotes.fit_speech), never past the character limit, and
    never a word or quote that is still being written. Frames of a sealed round say so ("sealed"),
    and debates.snapshots.ephemeral_for decides who gets which frame (blinded viewers get none)."""

    def __init__(self, debate_id: int, seat: str, round_index: int):
        self.debate_id, self.seat, self.round = debate_id, seat, round_index
        self.streams_text, self.sealed = False, False
        self.char_limit, self.quote_chars = None, None
        self.chars = 0
        self.raw, self.sent = "", ""
        self.pending, self.candidate, self.last_sent = False, 0, 0.0

    def started(
        self, streams_text: bool, sealed: bool = False, char_limit: int | None = None, quote_chars: int | None = None
    ) -> None:
        self.streams_text, self.sealed = streams_text, sealed
        self.char_limit, self.quote_chars = char_limit, quote_chars
        self.send({"type": "ai_turn_started", "streams_text": streams_text})

    def delta(self, candidate: int, text: str) -> None:
        if candidate != self.candidate:
            self.flush()
            self.chars, self.raw, self.sent = 0, "", ""
        self.chars += len(text)
        self.raw += text
        self.candidate = candidate
        self.pending = True
        if time.monotonic() - self.last_sent >= FRAME_INTERVAL:
            self.flush()

    def flush(self, final: str | None = None) -> None:
        """final: the speech as it will be stored, once it is written."""
        if not self.pending and final is None:
            return
        if self.streams_text:
            visible = final if final is not None else streamable(self.raw, self.char_limit, self.quote_chars)
            if visible.startswith(self.sent) and len(visible) > len(self.sent):
                self.send({"type": "ai_token", "delta": visible[len(self.sent) :], "chars": len(visible)})
                self.sent = visible
        elif self.pending:
            chars = self.chars if self.char_limit is None else min(self.chars, self.char_limit)
            self.send({"type": "ai_token", "delta": "", "chars": chars, "candidate": self.candidate})
        self.pending, self.last_sent = False, time.monotonic()

    def retry(self, candidate: int, failures: int, error, delay: float) -> None:
        self.chars, self.raw, self.sent, self.pending = 0, "", "", False
        self.send(
            {
                "type": "ai_turn_retry",
                "code": error.code,
                "message": error.message,
                "attempt": failures + 1,
                "delay": round(delay, 2),
                "candidate": candidate,
            }
        )

    def send(self, frame: dict) -> None:
        frame = dict(frame, seat=self.seat, round=self.round)
        if self.sealed:
            frame["sealed"] = True
        try:
            live.publish_ephemeral(self.debate_id, frame)
        except Exception:  # a lost progress frame must not lose the turn
            log.exception("could not publish an AI progress frame for debate %s", self.debate_id)


def streamable(raw: str, char_limit: int | None, quote_chars: int | None) -> str:
    """The part of a draft that will be stored whatever comes next: the draft without an
    unfinished tag or quote and without its last word (which may still grow), cut as the
    protocol will cut it."""
    lowered = raw.lower()
    opened, closed = lowered.rfind("<quote"), lowered.rfind("</quote")
    if opened > closed:
        raw = raw[:opened]
    tag = raw.rfind("<")
    if tag != -1 and ">" not in raw[tag:]:
        raw = raw[:tag]
    if raw and not raw[-1].isspace():
        raw = raw[: len(raw) - len(raw.split()[-1])] if raw.split() else ""
    if char_limit is None:
        return quotes.fit_speech(raw, len(raw), quote_chars)
    return quotes.fit_speech(raw, char_limit, quote_chars)
