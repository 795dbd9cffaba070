"""The debate protocol engine: who may act now, what an action does, when the debate ends.

Pure module (no Django). A Protocol is a value object stored with each debate. A DebateEngine's
state is stored with the debate after every action (to_state / from_state), so an action never
has to replay the whole history; replaying the stored actions gives the same engine, which the
tests check.

Seats are the debaters' letters ("A", "B"; one seat for consultancy) and "judge".
Round kinds:
- sequential: the debaters speak one after another, in `speaking_order`;
- simultaneous: every debater writes; speeches stay sealed until all are in, so speed does not
  betray the liar;
- judge_feedback: the judge reports a probability for each answer, may comment, and may end the
  debate early when the protocol allows it.
"""

from dataclasses import asdict, dataclass, field

from .pixel.board import PIXEL_COUNT, SIDE, row_column

SEQUENTIAL = "sequential"
SIMULTANEOUS = "simultaneous"
JUDGE_FEEDBACK = "judge_feedback"
ROUND_KINDS = (SEQUENTIAL, SIMULTANEOUS, JUDGE_FEEDBACK)
JUDGE = "judge"
EVERYONE = "all"


class Refused(Exception):
    """An action that is not allowed. `code` is stable for clients; the message is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Protocol:
    rounds: tuple[str, ...] = (SIMULTANEOUS, JUDGE_FEEDBACK, SEQUENTIAL, JUDGE_FEEDBACK)
    debaters: tuple[str, ...] = ("A", "B")
    speaking_order: tuple[str, ...] | None = None  # sequential rounds; default: `debaters`
    char_limit: int = 750
    turn_seconds: int | None = None
    judge_may_end: bool = True
    scoring_rule: str = "log"  # how the judge's final verdict is scored (judging.scoring)
    turn_penalty: float = 0.0  # subtracted from the judge's score per debater turn seen
    quote_chars_per_turn: int | None = None  # characters of quotes per speech (None: unlimited)
    quote_chars_per_debate: int | None = None  # per debater over the whole debate (None: unlimited)
    # Image debates: revealed pixels are the only evidence (statements and rectangles are claims).
    evidence: str = "text"  # "text" or "pixels"
    reveals_per_debater: int | None = None  # pixels each debater may reveal over the debate
    reveal_each_turn: bool = False  # every speech reveals exactly one pixel (the paper's AI game)

    def __post_init__(self):
        object.__setattr__(self, "rounds", tuple(self.rounds))
        object.__setattr__(self, "debaters", tuple(self.debaters))
        if self.speaking_order is not None:
            object.__setattr__(self, "speaking_order", tuple(self.speaking_order))
        problems = self.problems()
        if problems:
            raise ValueError("; ".join(problems))

    def problems(self) -> list[str]:
        found = []
        if not self.rounds:
            found.append("a protocol needs at least one round")
        for i, kind in enumerate(self.rounds):
            if kind not in ROUND_KINDS:
                found.append(f"round {i + 1}: unknown kind {kind!r} (use one of {', '.join(ROUND_KINDS)})")
        if not self.debaters or len(set(self.debaters)) != len(self.debaters) or JUDGE in self.debaters:
            found.append("debaters must be distinct seat names other than 'judge'")
        if self.speaking_order is not None and sorted(self.speaking_order) != sorted(self.debaters):
            found.append("speaking_order must list each debater once")
        if not 1 <= self.char_limit <= 100_000:
            found.append("char_limit must be between 1 and 100000")
        if self.turn_seconds is not None and not 2 <= self.turn_seconds <= 86_400:
            found.append("turn_seconds must be between 2 and 86400, or empty")
        if self.scoring_rule not in ("log", "quadratic", "spherical"):
            found.append("scoring_rule must be log, quadratic or spherical")
        if not 0 <= self.turn_penalty <= 1:
            found.append("turn_penalty must be between 0 and 1")
        if self.evidence not in ("text", "pixels"):
            found.append("evidence must be text or pixels")
        if self.evidence == "pixels":
            if SIMULTANEOUS in self.rounds:
                found.append("pixel debates use sequential rounds (a sealed speech cannot hold a reveal)")
            if not isinstance(self.reveals_per_debater, int) or not 1 <= self.reveals_per_debater <= PIXEL_COUNT:
                found.append(f"reveals_per_debater must be between 1 and {PIXEL_COUNT} in a pixel debate")
        elif self.reveals_per_debater is not None or self.reveal_each_turn:
            found.append("reveals_per_debater and reveal_each_turn need evidence: pixels")
        for name in ("quote_chars_per_turn", "quote_chars_per_debate"):
            limit = getattr(self, name)
            if limit is not None and (
                isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= 100_000
            ):
                found.append(f"{name} must be a whole number between 0 and 100000, or empty")
        return found

    @property
    def order(self) -> tuple[str, ...]:
        return self.speaking_order or self.debaters

    @property
    def has_speeches(self) -> bool:
        """False for direct judging: only judge rounds, so the debater seats never speak."""
        return any(kind != JUDGE_FEEDBACK for kind in self.rounds)

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> "Protocol":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown protocol fields: {', '.join(sorted(unknown))}")
        return cls(**data)


@dataclass(frozen=True)
class Action:
    seat: str
    kind: str  # "speech", "feedback" or "timeout"
    text: str = ""
    probabilities: tuple[float, ...] | None = None
    end_debate: bool = False
    reveal: int | None = None  # pixel debates: the pixel (row * 28 + column) this speech reveals


@dataclass(frozen=True)
class Event:
    kind: str
    audience: str  # EVERYONE or one seat name
    data: dict = field(default_factory=dict)


def validate_probabilities(probabilities, answer_count: int) -> tuple[float, ...]:
    if probabilities is None or len(probabilities) != answer_count:
        raise Refused("bad_probabilities", f"give one probability for each of the {answer_count} answers")
    # Strings and booleans would pass float() and then be stored as sent.
    if any(isinstance(p, bool) or not isinstance(p, (int, float)) for p in probabilities):
        raise Refused("bad_probabilities", "probabilities must be numbers")
    try:
        values = tuple(float(p) for p in probabilities)
    except OverflowError:  # a whole number too large for a float
        raise Refused("bad_probabilities", "each probability must be between 0 and 1") from None
    if any(not 0.0 <= p <= 1.0 for p in values):
        raise Refused("bad_probabilities", "each probability must be between 0 and 1")
    if abs(sum(values) - 1.0) > 1e-6:
        raise Refused("bad_probabilities", f"probabilities must add up to 1 (they add up to {sum(values):.4f})")
    return values


class DebateEngine:
    def __init__(self, protocol: Protocol, answer_count: int, revealable: frozenset | None = None):
        """revealable: the pixels a pixel debate may reveal (the image's nonzero pixels)."""
        self.protocol = protocol
        self.answer_count = answer_count
        self.revealable = revealable
        self.revealed: list[int] = []
        self.reveals_by_seat: dict[str, int] = {}
        self.round_index = 0
        self.finished = False
        self.ended_by_judge = False
        self._acted: list[str] = []  # seats that acted in the current round, in order
        self._sealed: dict[str, str] = {}  # simultaneous speeches of the current round

    @classmethod
    def replay(cls, protocol: Protocol, answer_count: int, actions, revealable=None) -> "DebateEngine":
        engine = cls(protocol, answer_count, revealable)
        for action in actions:
            engine.apply(action)
        return engine

    def to_state(self) -> dict:
        """Everything the engine has learnt from the actions so far, as JSON."""
        return {
            "round_index": self.round_index,
            "finished": self.finished,
            "ended_by_judge": self.ended_by_judge,
            "acted": list(self._acted),
            "sealed": dict(self._sealed),
            "revealed": list(self.revealed),
            "reveals_by_seat": dict(self.reveals_by_seat),
        }

    @classmethod
    def from_state(cls, protocol: Protocol, answer_count: int, state: dict, revealable=None) -> "DebateEngine":
        engine = cls(protocol, answer_count, revealable)
        engine.round_index = state["round_index"]
        engine.finished = state["finished"]
        engine.ended_by_judge = state["ended_by_judge"]
        engine._acted = list(state["acted"])
        engine._sealed = dict(state["sealed"])
        engine.revealed = list(state["revealed"])
        engine.reveals_by_seat = dict(state["reveals_by_seat"])
        return engine

    @property
    def round_kind(self) -> str | None:
        return None if self.finished else self.protocol.rounds[self.round_index]

    def expected_seats(self) -> tuple[str, ...]:
        """The seats that may act now (several only in a simultaneous round)."""
        kind = self.round_kind
        if kind is None:
            return ()
        if kind == JUDGE_FEEDBACK:
            return () if JUDGE in self._acted else (JUDGE,)
        waiting = tuple(s for s in self.protocol.order if s not in self._acted)
        return waiting[:1] if kind == SEQUENTIAL else waiting

    def apply(self, action: Action) -> list[Event]:
        if self.finished:
            raise Refused("debate_over", "the debate is over: no more turns are accepted")
        if action.seat not in self.expected_seats():
            raise Refused("not_your_turn", self._whose_turn_message(action.seat))
        if action.kind == "timeout":
            return self._time_out(action.seat)
        if action.seat == JUDGE:
            if action.kind != "feedback":
                raise Refused("wrong_action", "the judge gives feedback (probabilities) in this round")
            return self._feedback(action)
        if action.kind != "speech":
            raise Refused("wrong_action", "debaters give speeches")
        return self._speech(action)

    def _whose_turn_message(self, seat: str) -> str:
        expected = self.expected_seats()
        waiting = " or ".join("the judge" if s == JUDGE else f"debater {s}" for s in expected)
        who = "the judge" if seat == JUDGE else f"debater {seat}"
        return f"it is not {who}'s turn: waiting for {waiting}"

    def _check_reveal(self, action: Action) -> None:
        if action.reveal is None:
            if self.protocol.reveal_each_turn:
                raise Refused("reveal_required", "each turn of this debate reveals one pixel")
            return
        if self.protocol.evidence != "pixels":
            raise Refused("no_reveals", "this debate has no pixels to reveal")
        pixel = action.reveal
        if isinstance(pixel, bool) or not isinstance(pixel, int) or not 0 <= pixel < PIXEL_COUNT:
            raise Refused("bad_reveal", f"a reveal is a pixel number 0..{PIXEL_COUNT - 1} (row * {SIDE} + column)")
        if pixel in self.revealed:
            raise Refused("already_revealed", f"pixel {row_column(pixel)} is already revealed")
        if self.revealable is not None and pixel not in self.revealable:
            raise Refused("not_revealable", f"pixel {row_column(pixel)} is black: only nonzero pixels can be revealed")
        allowed = self.protocol.reveals_per_debater or 0  # always set in pixel debates (validate)
        if self.reveals_by_seat.get(action.seat, 0) >= allowed:
            raise Refused("no_reveals_left", f"you have revealed all {allowed} of your pixels")

    def _speech(self, action: Action) -> list[Event]:
        self._check_reveal(action)
        text = action.text.strip()
        if not text and action.reveal is None:
            raise Refused("empty_speech", "a speech cannot be empty")
        if len(action.text) > self.protocol.char_limit:
            raise Refused(
                "too_long",
                f"a speech may have at most {self.protocol.char_limit} characters (this one has {len(action.text)})",
            )
        round_number = self.round_index
        if self.round_kind == SIMULTANEOUS:
            self._sealed[action.seat] = action.text
            events = [Event("speech_sealed", EVERYONE, {"seat": action.seat, "round": round_number})]
            return events + self._record(action.seat)
        data = {"seat": action.seat, "round": round_number, "text": action.text}
        if action.reveal is not None:
            self.revealed.append(action.reveal)
            self.reveals_by_seat[action.seat] = self.reveals_by_seat.get(action.seat, 0) + 1
            data["reveal"] = action.reveal
        events = [Event("speech", EVERYONE, data)]
        return events + self._record(action.seat)

    def _feedback(self, action: Action) -> list[Event]:
        probabilities = validate_probabilities(action.probabilities, self.answer_count)
        if len(action.text) > self.protocol.char_limit:
            raise Refused("too_long", f"a comment may have at most {self.protocol.char_limit} characters")
        if action.end_debate and not self.protocol.judge_may_end:
            raise Refused("cannot_end", "this protocol does not let the judge end the debate early")
        events = [
            Event(
                "feedback",
                EVERYONE,
                {
                    "round": self.round_index,
                    "probabilities": list(probabilities),
                    "comment": action.text,
                    "end_debate": action.end_debate,
                },
            )
        ]
        if action.end_debate:
            self.ended_by_judge = True
            return events + self._finish("judge_ended")
        return events + self._record(JUDGE)

    def _time_out(self, seat: str) -> list[Event]:
        events = [Event("timed_out", EVERYONE, {"seat": seat, "round": self.round_index})]
        return events + self._record(seat)

    def _record(self, seat: str) -> list[Event]:
        self._acted.append(seat)
        if self.expected_seats():
            return []
        events = []
        if self._sealed:
            speeches = [{"seat": s, "text": self._sealed[s]} for s in self.protocol.order if s in self._sealed]
            events.append(Event("speeches_revealed", EVERYONE, {"round": self.round_index, "speeches": speeches}))
        self._acted, self._sealed = [], {}
        self.round_index += 1
        if self.round_index == len(self.protocol.rounds):
            return events + self._finish("all_rounds_done")
        return events + [
            Event(
                "round_started", EVERYONE, {"round": self.round_index, "kind": self.protocol.rounds[self.round_index]}
            )
        ]

    def _finish(self, reason: str) -> list[Event]:
        self.finished = True
        self._acted, self._sealed = [], {}
        return [Event("debate_finished", EVERYONE, {"reason": reason})]
