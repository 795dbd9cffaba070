"""Reading one room of the NYU debate dataset (Michael et al. 2023) into an import plan.
Pure module (no Django): the plan says what to store; judging.nyu_import stores it.

The room files (pub/debates/official/*.json) hold the story as Penn-Treebank tokens, and quotes
as token spans [begin, end) into them. DebateLab keeps the story as plain text, so the tokens are
joined into text here and every quote becomes a character span of that text; the token span
is kept beside it. A plan is checked by replaying its turns through the protocol engine, so
whatever is stored replays like a debate held on the platform.
"""

import bisect
import functools
import hashlib
import math
from dataclasses import dataclass, field

from ..protocol import JUDGE, JUDGE_FEEDBACK, SEQUENTIAL, SIMULTANEOUS, Action, DebateEngine, Protocol, Refused

SOURCE = "nyu-debate-2023"
LICENSE = "CC-BY-4.0"
ATTRIBUTION = (
    'Debates from Michael, Mahdi, Rein, Petty, Dirani, Padmakumar and Bowman (2023), "Debate Helps '
    'Supervise Unreliable Experts", released under CC-BY 4.0; stories from Project Gutenberg via the '
    "QuALITY dataset (CC-BY 4.0)."
)
AI_NAMES = frozenset({"GPT-4"})
SEATS = ("A", "B")  # "Debater A" argues the room's first answer, "Debater B" the second
ROUND_KINDS = {"SimultaneousSpeeches": SIMULTANEOUS, "SequentialSpeeches": SEQUENTIAL, "JudgeFeedback": JUDGE_FEEDBACK}
RULE_KINDS = {
    "SimultaneousSpeechesRound": SIMULTANEOUS,
    "SequentialSpeechesRound": SEQUENTIAL,
    "JudgeFeedbackRound": JUDGE_FEEDBACK,
    "NegotiateEndRound": None,
}
MARKUP_CHARS = len("<quote></quote>")
STATUSES = {"WaitingToBegin": "scheduled", "InProgress": "abandoned"}  # Complete: see _status

# Penn-Treebank tokens and how they are written in plain text.
WRITTEN = {
    "``": '"',
    "''": '"',
    "`": "'",
    "-LRB-": "(",
    "-RRB-": ")",
    "-LSB-": "[",
    "-RSB-": "]",
    "-LCB-": "{",
    "-RCB-": "}",
}
NO_SPACE_BEFORE = {
    ".",
    ",",
    "!",
    "?",
    ";",
    ":",
    "...",
    "''",
    "'",
    "n't",
    "'s",
    "'re",
    "'ve",
    "'ll",
    "'m",
    "'d",
    "%",
    ")",
    "]",
    "}",
    "-RRB-",
    "-RSB-",
    "-RCB-",
}
NO_SPACE_AFTER = {"``", "`", "(", "[", "{", "-LRB-", "-LSB-", "-LCB-", "$", "#"}


class RoomProblem(Exception):
    """The room cannot be represented in DebateLab; the message says why."""


class Story:
    """A tokenised story written out as text, with each token's character span in it."""

    def __init__(self, tokens: list[str]):
        pieces, self.starts, self.ends = [], [], []
        length, glue_next, inside_double_quotes = 0, True, False
        for token in tokens:
            if not token or token.isspace():  # empty tokens and line breaks need no spaces around them
                pieces.append(token)
                self.starts.append(length)
                length += len(token)
                self.ends.append(length)
                glue_next = glue_next or bool(token)
                continue
            opens = token == "``" or (token == '"' and not inside_double_quotes)
            closes = token == "''" or (token == '"' and inside_double_quotes)
            if not (glue_next or closes or token in NO_SPACE_BEFORE or token[0].isspace()):
                pieces.append(" ")
                length += 1
            written = WRITTEN.get(token, token)
            pieces.append(written)
            self.starts.append(length)
            length += len(written)
            self.ends.append(length)
            inside_double_quotes = (inside_double_quotes or opens) and not closes
            glue_next = opens or token in NO_SPACE_AFTER or token[-1].isspace()
        self.text = "".join(pieces)
        self.token_count = len(tokens)

    def char_span(self, begin: int, end: int) -> tuple[int, int]:
        """Token span [begin, end) -> character span [start, end) of self.text."""
        if begin >= end:
            at = self.starts[begin] if begin < self.token_count else len(self.text)
            return at, at
        return self.starts[begin], self.ends[end - 1]


@functools.lru_cache(maxsize=8)
def _story(tokens: tuple) -> Story:
    """Rooms about one story follow each other in file order: write each story out once."""
    return Story(list(tokens))


class StoryMap:
    """Character spans of one writing of a story -> the same words in another writing of it.

    The dataset holds some stories twice: early rooms as chunks of the original text, later ones
    as Penn-Treebank tokens. Both have the same letters and digits in the same order, so a span
    maps through them; the punctuation at either end of a span maps by count within its gap."""

    def __init__(self, source: str, target: str):
        self.source, self.target = source, target
        self.source_letters = [i for i, c in enumerate(source) if c.isalnum()]
        self.target_letters = [i for i, c in enumerate(target) if c.isalnum()]
        if [source[i].lower() for i in self.source_letters] != [target[i].lower() for i in self.target_letters]:
            raise RoomProblem("its story differs in its words from the copy of the story stored before")

    def span(self, start: int, end: int) -> tuple[int, int]:
        if start >= end:
            return self._gap_end(start, end), self._gap_end(start, end)
        begin = self._gap_start(start)
        return begin, max(begin, self._gap_end(start, end))

    def _gap(self, letter: int, letters: list, text: str) -> tuple[int, int]:
        """The characters between letter-1 and letter (a gap of punctuation and spaces)."""
        begin = letters[letter - 1] + 1 if letter > 0 else 0
        stop = letters[letter] if letter < len(letters) else len(text)
        return begin, stop

    def _gap_start(self, start: int) -> int:
        letter = bisect.bisect_left(self.source_letters, start)
        _, source_stop = self._gap(letter, self.source_letters, self.source)
        taken = _marks(self.source[start:source_stop])
        begin, stop = self._gap(letter, self.target_letters, self.target)
        position = stop
        while taken and position > begin:
            position -= 1
            taken -= not self.target[position].isspace()
        return position

    def _gap_end(self, start: int, end: int) -> int:
        letter = bisect.bisect_left(self.source_letters, end)
        source_begin, _ = self._gap(letter, self.source_letters, self.source)
        taken = _marks(self.source[max(source_begin, start) : end])
        begin, stop = self._gap(letter, self.target_letters, self.target)
        position = begin
        while taken and position < stop:
            taken -= not self.target[position].isspace()
            position += 1
        return position


def _marks(text: str) -> int:
    return sum(not c.isspace() for c in text)


@dataclass
class QuestionPlan:
    external_id: str
    text: str
    answers: list  # canonical order: sorted, so every room of a question agrees on it
    correct_index: int
    hidden_material: str
    title: str
    metadata: dict


@dataclass
class SeatPlan:
    seat: str
    name: str
    answer_index: int | None  # canonical; None for the judge

    @property
    def is_ai(self) -> bool:
        return self.name in AI_NAMES


@dataclass
class TurnPlan:
    round_index: int
    seat: str
    kind: str  # speech, feedback, or timeout for an empty speech
    text: str = ""
    probabilities: list | None = None  # canonical order
    end_debate: bool = False
    payload: dict = field(default_factory=dict)
    author_name: str | None = None  # the person who wrote it (None for an AI)
    at_ms: int | None = None


@dataclass
class EventPlan:
    kind: str
    audience: str
    data: dict
    at_ms: int | None


@dataclass
class VerdictPlan:
    judge_name: str
    live: bool
    probabilities: list  # canonical
    chosen_index: int
    correct: bool
    reason: str
    score: float
    after_turn: int
    after_seq: int
    seconds_spent: float | None
    at_ms: int | None
    provenance: dict


@dataclass
class RoomPlan:
    name: str
    question: QuestionPlan
    protocol: Protocol
    status: str
    answer_order: list  # canonical index of each answer in the order the room showed them
    seats: list
    turns: list
    events: list
    verdicts: list
    provenance: dict
    created_ms: int | None
    started_ms: int | None
    ended_ms: int | None
    notes: list = field(default_factory=list)  # what is kept only in provenance, or was adjusted


def protocol_name(setting: dict) -> str:
    """The name an NYU debate's protocol goes by (human debate, AI debate, human consultancy, AI
    consultancy), from the setting the importer records in provenance."""
    return f"{'human' if setting['debaters'] == 'human' else 'AI'} {setting['format']}"


def article_id(room: dict) -> str | None:
    """The QuALITY article a room's story comes from."""
    material = room.get("setup", {}).get("sourceMaterial", {}).get("QuALITYSourceMaterial") or {}
    return str(material["articleId"]) if "articleId" in material else None


def plan_room(
    room: dict, metadata: dict | None, file_name: str, file_sha256: str, stored_story: str | None = None
) -> RoomPlan:
    """metadata: the room's line of debates-metadata.jsonl, or None. stored_story: the text of
    this room's story as stored before, if any; the room's quotes are mapped onto it.
    Raises RoomProblem."""
    try:
        return _RoomReader(room, metadata, file_name, file_sha256, stored_story).plan()
    except RoomProblem:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise RoomProblem(f"unexpected room format ({type(e).__name__}: {e})") from None


class _RoomReader:
    def __init__(self, room, metadata, file_name, file_sha256, stored_story):
        self.room, self.metadata = room, metadata
        self.stored_story = stored_story
        self.setup = room["setup"]
        self.name = file_name.removesuffix(".json")
        self.file_name, self.file_sha256 = file_name, file_sha256
        self.notes = []

    def plan(self) -> RoomPlan:
        material = self.setup["sourceMaterial"].get("QuALITYSourceMaterial")
        if material is None:
            raise RoomProblem(f"source material {', '.join(self.setup['sourceMaterial'])} is not a QuALITY story")
        self.story = _story(tuple(material["contents"]))
        self.story_text, self.story_map = self.story.text, None
        if self.stored_story is not None and self.stored_story != self.story.text:
            self.story_map = StoryMap(self.story.text, self.stored_story)
            self.story_text = self.stored_story
            self.notes.append(
                "the room writes its story differently from the copy stored before (same words); "
                "its quotes are mapped onto the stored copy"
            )
        self.question = self._question(material)
        shown = list(self.setup["answers"])
        self.answer_order = [self.question.answers.index(a) for a in shown]
        self.seats = self._seats()
        debaters = tuple(s.seat for s in self.seats if s.seat != JUDGE)
        turns = self._turns()
        debaters = tuple(sorted(set(debaters) | {t.seat for t in turns if t.seat != JUDGE}))
        if not debaters:
            raise RoomProblem("the room has no debater")
        rules = self.setup["rules"]
        played = [kind for kind in (ROUND_KINDS.get(next(iter(r))) for r in self.room["rounds"]) if kind]
        status = self._status()
        protocol = self._protocol(rules, debaters, played, turns, status)
        events = self._replay(protocol, turns)
        verdicts = self._verdicts(turns, events, status)
        if status == "complete" and not any(v.live for v in verdicts):
            status = "awaiting_verdict"  # DebateLab calls a debate complete once its live verdict is in
        if any(v.live for v in verdicts):
            events.append(EventPlan("verdict_given", "all", {"status": "complete"}, events[-1].at_ms))
        return RoomPlan(
            name=self.name,
            question=self.question,
            protocol=protocol,
            status=status,
            answer_order=self.answer_order,
            seats=self.seats,
            turns=turns,
            events=events,
            verdicts=verdicts,
            provenance=self._provenance(rules),
            created_ms=self.setup.get("creationTime"),
            started_ms=turns[0].at_ms if turns else None,
            ended_ms=self._ended_ms(turns, status),
            notes=self.notes,
        )

    # The question ------------------------------------------------------------------------------

    def _question(self, material) -> QuestionPlan:
        answers = self.setup["answers"]
        if len(answers) < 2 or len(set(answers)) != len(answers):
            raise RoomProblem("the room needs two or more different answers")
        correct = self.setup["correctAnswerIndex"]
        if not 0 <= correct < len(answers):
            raise RoomProblem(f"correctAnswerIndex {correct} is not one of the {len(answers)} answers")
        canonical = sorted(answers)
        text = self.setup["question"]
        article = str(material["articleId"])
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        return QuestionPlan(
            external_id=f"quality-{article}:{digest}",
            text=text,
            answers=canonical,
            correct_index=canonical.index(answers[correct]),
            hidden_material=self.story_text,
            title=material.get("title", ""),
            metadata={
                "dataset": SOURCE,
                "quality_article_id": article,
                "license": LICENSE,
                "attribution": ATTRIBUTION,
                "hidden_material": "the QuALITY story's tokens joined into text; NYU quotes are token "
                "spans, converted to character spans of this text",
            },
        )

    # Seats and turns ---------------------------------------------------------------------------

    def _seats(self) -> list[SeatPlan]:
        seats = []
        for role, name in self.setup["roles"].items():
            if role == "Judge":
                seats.append(SeatPlan(JUDGE, name, None))
            elif role in ("Debater A", "Debater B"):
                seat = role[-1]
                seats.append(SeatPlan(seat, name, self.answer_order[SEATS.index(seat)]))
            else:
                raise RoomProblem(f"unknown role {role!r}")
        people = [s.name for s in seats if not s.is_ai]
        if len(set(people)) != len(people):
            raise RoomProblem("one person holds two roles in this room (DebateLab gives a person one seat)")
        return sorted(seats, key=lambda s: s.seat)

    def _turns(self) -> list[TurnPlan]:
        turns = []
        for number, wrapped in enumerate(self.room["rounds"]):
            ((kind, value),) = wrapped.items()
            if kind in ("SimultaneousSpeeches", "SequentialSpeeches"):
                turns += self._speeches(value["speeches"], number)
            elif kind == "JudgeFeedback":
                turns.append(self._feedback(value, number))
            elif kind == "NegotiateEnd":
                self.notes.append(
                    f"round {number + 1} (NegotiateEnd: debaters' votes to end) is kept in provenance only"
                )
            elif kind != "OfflineJudgments":
                raise RoomProblem(f"round {number + 1}: unknown round kind {kind!r}")
        return turns

    def _speeches(self, speeches: dict, number: int) -> list[TurnPlan]:
        # Both seats speak in seat order: the NYU platform's order for sequential rounds, and one
        # the engine accepts for simultaneous ones. Timestamps stay in the payload.
        turns = []
        for key in sorted(speeches, key=int):
            if key not in ("0", "1"):
                raise RoomProblem(f"round {number + 1}: a speech for answer {key}; DebateLab seats two debaters")
            speech = speeches[key]
            seat = SEATS[int(key)]
            text, quotes = self._segments(speech["content"], f"round {number + 1}, debater {seat}")
            # The raw segments are not kept: the text and the quotes (with their token spans) rebuild
            # them, and a judge's view may show a payload but never where a quote sits in the story.
            payload = {"nyu": {"round": number, "timestamp": speech.get("timestamp")}}
            if quotes:
                payload["quotes"] = quotes
            author = None if speech["speaker"] in AI_NAMES else speech["speaker"]
            if not text.strip():
                self.notes.append(f"round {number + 1}: debater {seat}'s speech is empty; stored as a timed-out turn")
                payload["empty_speech"] = True
                turns.append(
                    TurnPlan(0, seat, "timeout", payload=payload, author_name=author, at_ms=speech.get("timestamp"))
                )
                continue
            turns.append(
                TurnPlan(
                    0, seat, "speech", text=text, payload=payload, author_name=author, at_ms=speech.get("timestamp")
                )
            )
        return turns

    def _feedback(self, value: dict, number: int) -> TurnPlan:
        feedback = value["feedback"]
        text, quotes = self._segments(feedback["content"], f"round {number + 1}, judge")
        payload = {
            "nyu": {"round": number, "timestamp": feedback.get("timestamp"), "distribution": value["distribution"]}
        }
        if quotes:
            payload["quotes"] = quotes
        return TurnPlan(
            0,
            JUDGE,
            "feedback",
            text=text,
            probabilities=self._canonical(value["distribution"]),
            end_debate=bool(value["endDebate"]),
            payload=payload,
            author_name=feedback["speaker"],
            at_ms=feedback.get("timestamp"),
        )

    def _segments(self, segments: list, where: str) -> tuple[str, list]:
        """Speech segments -> text with <quote>...</quote> markup, and the quotes as character spans."""
        pieces, quotes = [], []
        for segment in segments:
            ((kind, value),) = segment.items()
            if kind == "Text":
                pieces.append(value["text"])
            elif kind == "Quote":
                quote = self._quote(*value["span"], where)
                quotes.append(quote)
                pieces.append(f"<quote>{quote['text']}</quote>")
            else:
                raise RoomProblem(f"{where}: unknown speech segment {kind!r}")
        return "".join(pieces), quotes

    def _quote(self, begin: int, end: int, where: str) -> dict:
        count = self.story.token_count
        if not 0 <= begin <= end:
            raise RoomProblem(f"{where}: quote span [{begin}, {end}) is not a span")
        quote = {}
        if end > count:
            self.notes.append(
                f"{where}: quote span [{begin}, {end}) runs past the story's {count} tokens; "
                f"cut at the end of the story"
            )
            quote["cut_from_tokens"] = [begin, end]
            begin, end = min(begin, count), count
        start, stop = self.story.char_span(begin, end)
        if self.story_map:
            start, stop = self.story_map.span(start, stop)
        # The quote is the story's own text, so it is verified by construction.
        return {
            "start": start,
            "end": stop,
            "text": self.story_text[start:stop],
            "status": "verified",
            "tokens": [begin, end],
            **quote,
        }

    def _canonical(self, shown: list) -> list:
        if len(shown) != len(self.answer_order):
            raise RoomProblem(f"a judgment gives {len(shown)} probabilities for {len(self.answer_order)} answers")
        canonical = [0.0] * len(shown)
        for position, answer_index in enumerate(self.answer_order):
            canonical[answer_index] = shown[position]
        return canonical

    # Protocol, replay ----------------------------------------------------------------------------

    def _protocol(self, rules, debaters, played, turns, status) -> Protocol:
        """The rounds the room actually had; rooms that never finished also get their next round
        and the rest of its cycle from the rules (a Protocol has a fixed list of rounds, NYU rules
        repeat until the judge ends the debate)."""
        rounds = list(played)
        if status in ("scheduled", "abandoned"):
            rounds = self._planned_rounds(rules, len(played))
        limits = [r[k]["charLimit"] for part in _rule_parts(rules) for r in part for k in r if "charLimit" in r[k]]
        quote_limits = [
            r[k]["quoteLimit"]
            for part in _rule_parts(rules)
            for r in part
            for k in r
            if r[k].get("quoteLimit") is not None
        ]
        rules_limit = max(limits, default=750)
        # The engine counts the <quote> markup too, so the limit grows to fit the longest turn;
        # only a turn whose own characters overrun the rules is worth a note.
        longest = max((t for t in turns), key=lambda t: len(t.text), default=None)
        char_limit = max(rules_limit, len(longest.text) if longest else 0)
        overrun = [t for t in turns if len(t.text) - MARKUP_CHARS * len(t.payload.get("quotes", [])) > rules_limit]
        if overrun:
            self.notes.append(f"{len(overrun)} turn(s) are longer than the rules' limit of {rules_limit} characters")
        penalty = self._scoring()["perTurnPenalty"]
        try:
            return Protocol(
                rounds=tuple(rounds),
                debaters=debaters,
                char_limit=min(char_limit, 100_000),
                judge_may_end=True,
                scoring_rule="log",
                turn_penalty=penalty,
                quote_chars_per_turn=max(quote_limits, default=None),
            )
        except ValueError as e:
            raise RoomProblem(f"no DebateLab protocol fits this room's rules: {e}") from None

    def _planned_rounds(self, rules, played_count: int) -> list[str]:
        planned = []
        for kind, ends_cycle in _rule_rounds(rules):
            planned.append(kind)
            if len(planned) > played_count and ends_cycle:
                break
        played = [ROUND_KINDS[next(iter(r))] for r in self.room["rounds"] if next(iter(r)) in ROUND_KINDS]
        if planned[: len(played)] != played:
            self.notes.append("the rounds played differ from the room's rules; the protocol lists the rounds played")
            return played or planned
        return planned

    def _scoring(self) -> dict:
        function = self.setup["rules"]["scoringFunction"]
        score = function.get("LogScoreWithLinearPenalty")
        if score is None:
            raise RoomProblem(f"scoring function {', '.join(function)} has no DebateLab equivalent")
        return score

    def _replay(self, protocol: Protocol, turns: list[TurnPlan]) -> list[EventPlan]:
        engine = DebateEngine(protocol, len(self.answer_order))
        events = [EventPlan("debate_started", "all", {}, turns[0].at_ms)] if turns else []
        for number, turn in enumerate(turns, start=1):
            turn.round_index = engine.round_index
            action = Action(
                seat=turn.seat,
                kind=turn.kind,
                text=turn.text,
                end_debate=turn.end_debate,
                probabilities=tuple(turn.probabilities) if turn.probabilities else None,
            )
            try:
                happened = engine.apply(action)
            except Refused as e:
                raise RoomProblem(f"turn {number} ({turn.kind} by {turn.seat}) does not replay: {e.message}") from None
            events += [EventPlan(e.kind, e.audience, self._shown(e.data), turn.at_ms) for e in happened]
        return events

    def _shown(self, data: dict) -> dict:
        """Events leave the server with probabilities in the order the answers were shown."""
        if "probabilities" not in data:
            return data
        return dict(data, probabilities=[data["probabilities"][i] for i in self.answer_order])

    # Status, verdicts --------------------------------------------------------------------------

    def _status(self) -> str:
        if self.metadata is None:
            self.notes.append("no line in debates-metadata.jsonl: status worked out from the rounds")
            return self._status_from_rounds()
        ((status, value),) = self.metadata["status"].items()
        if status == "Complete":
            return "complete"
        if status not in STATUSES:
            raise RoomProblem(f"unknown room status {status!r}")
        return STATUSES[status]

    def _status_from_rounds(self) -> str:
        kinds = [next(iter(r)) for r in self.room["rounds"]]
        if not kinds:
            return "scheduled"
        ended = any(next(iter(r)) == "JudgeFeedback" and r["JudgeFeedback"]["endDebate"] for r in self.room["rounds"])
        return "complete" if ended or "OfflineJudgments" in kinds else "abandoned"

    def _verdicts(self, turns, events, status) -> list[VerdictPlan]:
        after_seq = len(events)
        verdicts = []
        feedback = [t for t in turns if t.kind == "feedback"]
        if status == "complete" and feedback and feedback[-1].end_debate:
            final = feedback[-1]
            verdict = self._verdict(
                final.author_name,
                final.probabilities,
                final.text,
                len(feedback) - 1,
                live=True,
                after_turn=len(turns),
                after_seq=after_seq,
                at_ms=final.at_ms,
                seconds=None,
                extra={},
            )
            self._check_against_metadata(verdict, len(feedback) - 1)
            verdicts.append(verdict)
        for judge, judging in self._offline_judgings().items():
            steps = judging["judgments"]
            if not steps:
                self.notes.append(f"offline judge {judge} gave no judgment; nothing stored")
                continue
            final = steps[-1]
            text, _ = self._segments(final["feedback"]["content"], f"offline judgment by {judge}")
            started = judging.get("startTimeMillis")
            at_ms = final["feedback"].get("timestamp")
            seconds = (at_ms - started) / 1000 if started and at_ms and at_ms >= started else None
            extra = {
                "mode": judging.get("mode"),
                "start_time_ms": started,
                "steps": [
                    {
                        "probabilities": self._canonical(s["distribution"]),
                        "end_debate": s["endDebate"],
                        "timestamp": s["feedback"].get("timestamp"),
                        "content": s["feedback"]["content"],
                    }
                    for s in steps
                ],
            }
            verdict = self._verdict(
                judge,
                self._canonical(final["distribution"]),
                text,
                len(steps) - 1,
                live=False,
                after_turn=len(turns),
                after_seq=after_seq,
                at_ms=at_ms,
                seconds=seconds,
                extra=extra,
            )
            verdicts.append(verdict)
        live_judges = {v.judge_name for v in verdicts if v.live}
        for verdict in [v for v in verdicts if not v.live and v.judge_name in live_judges]:
            self.notes.append(
                f"{verdict.judge_name} judged this room both live and offline; only the live "
                f"verdict is stored (one verdict per judge and debate)"
            )
            verdicts.remove(verdict)
        return verdicts

    def _offline_judgings(self) -> dict:
        found = {}
        for wrapped in self.room["rounds"]:
            if "OfflineJudgments" in wrapped:
                found.update(wrapped["OfflineJudgments"]["judgments"])
        return found

    def _verdict(
        self, judge, probabilities, reason, continues, *, live, after_turn, after_seq, at_ms, seconds, extra
    ) -> VerdictPlan:
        kind = "live" if live else "offline"
        correct_index = self.question.correct_index
        top = max(probabilities)
        leaders = [i for i, p in enumerate(probabilities) if abs(p - top) < 1e-9]
        provenance = {
            "dataset": SOURCE,
            "room": self.name,
            "nyu_judge": judge,
            "kind": kind,
            "continues": continues,
            "scoring": {"LogScoreWithLinearPenalty": self._scoring()},
            **extra,
        }
        chosen = leaders[0]
        if len(leaders) > 1:
            # The paper counts a judgment as correct when p(correct) > 0.5, so a tie is not correct;
            # a DebateLab verdict must name an answer, and naming a wrong one keeps the two consistent.
            chosen = next(i for i in leaders if i != correct_index)
            provenance["tie"] = True
            self.notes.append(
                f"the {kind} final judgment by {judge} is a tie ({probabilities}): stored as not "
                f"correct, as the paper counts it, with provenance['tie'] set"
            )
        score = self._score(probabilities[correct_index], continues)
        return VerdictPlan(
            judge_name=judge,
            live=live,
            probabilities=probabilities,
            chosen_index=chosen,
            correct=chosen == correct_index,
            reason=reason,
            score=score,
            after_turn=after_turn,
            after_seq=after_seq,
            seconds_spent=seconds,
            at_ms=at_ms,
            provenance=provenance,
        )

    def _score(self, p_correct: float, continues: int) -> float:
        """The room's own scoring function: a log score minus a penalty per judge 'continue'."""
        rule = self._scoring()
        log = math.log(max(p_correct, 1e-12)) / math.log(rule["logBase"])
        return rule["baseCoefficient"] * log + rule["constant"] - rule["perTurnPenalty"] * continues

    def _check_against_metadata(self, verdict: VerdictPlan, continues: int):
        info = ((self.metadata or {}).get("status", {}).get("Complete", {}).get("result") or {}).get("judgingInfo")
        if not info:
            return
        verdict.provenance["nyu_judge_reward"] = info.get("judgeReward")
        if info.get("numContinues") != continues:
            self.notes.append(f"metadata counts {info.get('numContinues')} judge continues, the rounds {continues}")

    def _ended_ms(self, turns, status):
        if status not in ("complete", "awaiting_verdict"):
            return None
        result = ((self.metadata or {}).get("status", {}).get("Complete") or {}).get("result") or {}
        return result.get("timestamp") or (turns[-1].at_ms if turns else None)

    # Provenance ----------------------------------------------------------------------------------

    def _provenance(self, rules) -> dict:
        roles = self.setup["roles"]
        debater_names = [name for role, name in roles.items() if role.startswith("Debater")]
        setting = {
            "debaters": "ai" if any(n in AI_NAMES for n in debater_names) else "human",
            "format": "debate" if len(debater_names) >= 2 else "consultancy",
        }
        meta = self.metadata or {}
        if meta.get("setting"):
            listed = {
                "debaters": "human" if meta["setting"]["isHuman"] else "ai",
                "format": "debate" if meta["setting"]["isDebate"] else "consultancy",
            }
            if listed != setting:
                self.notes.append(
                    f"the metadata's setting {listed} differs from the roles' {setting}; the metadata's is kept"
                )
                setting = listed
        status = meta.get("status") or {}
        result = (status.get("Complete") or {}).get("result") or {}
        negotiations = [
            {"round": n, "votes": r["NegotiateEnd"]["votes"]}
            for n, r in enumerate(self.room["rounds"])
            if "NegotiateEnd" in r
        ]
        provenance = {
            "importer": "judging.nyu_import",
            "dataset": SOURCE,
            "license": LICENSE,
            "attribution": ATTRIBUTION,
            "file": f"debates/official/{self.file_name}",
            "sha256": self.file_sha256,
            "setting": setting,
            "format": setting["format"],
            "included_in_paper": meta.get("includedInPaper"),
            "nyu": {
                "status": next(iter(status), None),
                "ended_by": next(iter(result.get("endedBy") or {}), None),
                "judging_info": result.get("judgingInfo"),
                "rules": rules,
                "roles": roles,
                "offline_judges_assigned": self.setup.get("offlineJudges"),
                "negotiate_end": negotiations,
                "surveys": self.room.get("feedback") or {},
                "scratchpads": self.room.get("scratchpads") or {},
            },
            "notes": self.notes,
        }
        return provenance


def _rule_parts(rules) -> list[list]:
    closing = rules.get("fixedClosing") or {}
    return [rules.get("fixedOpening") or [], rules.get("repeatingStructure") or [], closing.get("rounds") or []]


def _rule_rounds(rules):
    """The rounds a room's rules ask for, as (kind, ends_a_cycle); NegotiateEnd rounds (debaters
    voting to stop) have no DebateLab round and are left out. Without a closing the repeating
    block goes on until the judge ends the debate: 50 cycles stand for that here."""
    opening, repeating, closing_rounds = _rule_parts(rules)
    closing = rules.get("fixedClosing") or {}
    cycles = closing.get("maxRepeatCycles") or 50

    def kinds(rounds):
        return [k for k in (RULE_KINDS.get(next(iter(r))) for r in rounds) if k]

    opening_kinds = kinds(opening)
    for i, kind in enumerate(opening_kinds):
        yield kind, i == len(opening_kinds) - 1 and not repeating
    for _ in range(cycles if repeating else 0):
        cycle = kinds(repeating)
        for i, kind in enumerate(cycle):
            yield kind, i == len(cycle) - 1
    closing_kinds = kinds(closing_rounds)
    for i, kind in enumerate(closing_kinds):
        yield kind, i == len(closing_kinds) - 1
