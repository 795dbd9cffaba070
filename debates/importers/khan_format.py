"""Reading the human-judged LLM debates of Khan et al. 2024, "Debating with More Persuasive LLMs
Leads to More Truthful Answers" (github.com/ucl-dark/llm_debate, data/dataset_readme.md), into
plans. Pure module (no Django).

One row (CSV, or a JSON line) is one debate or consultancy judged by one person: `debate_id`,
`judge_id`, `experiment_name`, `story_title`, `question`, `debate_method` (debate, consultancy
or baseline), `consultant_type`, `interactive_judge`, `debater_config`, `swap`, `turns_used`,
`correct`, `confidence_correct`, `confidence`, `judgement_time`, `explanation`,
`question_set_id` (the QuALITY set_unique_id) and `transcript`, a JSON object with `answers`
({correct, incorrect}), `names`, `swap`, `rounds` (each {type, correct, incorrect,
cross_examiner, judge}) and `responses` (best-of-N: every candidate of every round). The story is
left out of the dataset; it comes from the QuALITY article stored before (story_for).

Mapping: the two answers are stored in the order (correct, incorrect); `swap` says which was shown
in position A (False: the correct one), which becomes the debate's answer order and the seats:
debater A argues position A. Each round's judge message (interactive judges) comes first as the
judge's turn, then the arguments (simultaneous or sequential rounds). Quotes are checked again
against the story, as every DebateLab speech is. The judge's confidence in the correct answer
becomes the verdict's probabilities; the verdict keeps the dataset's own `correct`.
"""

import csv
import io
import json
import re
from dataclasses import dataclass, field

from ..protocol import JUDGE, JUDGE_FEEDBACK, SEQUENTIAL, SIMULTANEOUS, Protocol
from ..quotes import check_speech

SOURCE = "khan-2024-llm-debate"
TIE_RULE = "khan-2024: the judge's own choice (the dataset's `correct`), whatever the confidence"
ROUND_KINDS = {"sim": SIMULTANEOUS, "seq": SEQUENTIAL}
_MARKED_QUOTE = re.compile(r"<(/?)[vu]_quote>", re.IGNORECASE)
REQUIRED = (
    "debate_id",
    "judge_id",
    "question",
    "debate_method",
    "swap",
    "correct",
    "confidence_correct",
    "question_set_id",
    "transcript",
)


class KhanFileError(Exception):
    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {line}: {message}" for line, message in problems))


@dataclass
class TurnPlan:
    round_index: int
    seat: str
    kind: str
    text: str
    payload: dict = field(default_factory=dict)


@dataclass
class DebatePlan:
    line: int
    external_id: str
    question_set_id: str
    question: str
    answers: list  # [correct, incorrect]
    answer_order: list  # canonical index shown in position A, then B
    method: str
    protocol: Protocol
    protocol_name: str
    seats: dict  # seat -> answer index (None: nobody speaks there)
    turns: list
    judge_id: str
    probabilities: list  # canonical
    correct: bool
    reason: str
    provenance: dict


def read_rows(text: str, fmt: str) -> list[tuple[int, dict]]:
    """(line, row) pairs of a CSV (with a header) or JSON-lines file."""
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        rows = []
        for row in reader:
            rows.append((reader.line_num, row))
        return rows
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as error:
                raise KhanFileError([(number, f"not valid JSON ({error.msg})")]) from None
    return rows


def plan_rows(rows, story_for) -> list[DebatePlan]:
    """story_for(question_set_id, story_title) -> the story text or None. Raises KhanFileError
    listing every problem; plans nothing then."""
    plans, problems = [], []
    for line, row in rows:
        try:
            plans.append(_plan(line, row, story_for))
        except ValueError as problem:
            problems.append((line, str(problem)))
    if problems:
        raise KhanFileError(problems)
    return plans


def _plan(line: int, row, story_for) -> DebatePlan:
    if not isinstance(row, dict):
        raise ValueError("a row must be an object")
    missing = [k for k in REQUIRED if row.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    transcript = row["transcript"]
    if isinstance(transcript, str):
        try:
            transcript = json.loads(transcript)
        except json.JSONDecodeError as error:
            raise ValueError(f"transcript is not valid JSON ({error.msg})") from None
    if not isinstance(transcript, dict) or not isinstance(transcript.get("answers"), dict):
        raise ValueError("transcript must be an object with answers {correct, incorrect}")
    answers = [
        str(transcript["answers"].get("correct") or "").strip(),
        str(transcript["answers"].get("incorrect") or "").strip(),
    ]
    if not all(answers) or answers[0] == answers[1]:
        raise ValueError("transcript answers must be two different non-empty answers")
    swap = _bool(row["swap"], "swap")
    method = str(row["debate_method"]).strip()
    if method not in ("debate", "consultancy", "baseline"):
        raise ValueError(f"debate_method {method!r} is not debate, consultancy or baseline")
    story = story_for(str(row["question_set_id"]), row.get("story_title") or transcript.get("story_title"))
    if story is None:
        raise ValueError(
            f"no QuALITY story for question set {row['question_set_id']} "
            f"({row.get('story_title') or 'no title'}): import QuALITY first (manage.py import_quality)"
        )
    answer_order = [1, 0] if swap else [0, 1]
    seats = _seats(method, row, transcript, answer_order)
    turns, kinds = _turns(transcript, seats, story)
    interactive = _bool(row.get("interactive_judge") or False, "interactive_judge")
    order = tuple(s for s in ("A", "B") if s in seats)
    protocol = Protocol(rounds=tuple(kinds) or (JUDGE_FEEDBACK,), debaters=order, char_limit=100_000)
    p_correct = _confidence(row["confidence_correct"])
    correct = _bool(row["correct"], "correct")
    provenance = {
        "importer": "judging.khan_import",
        "dataset": SOURCE,
        "line": line,
        "row": {k: v for k, v in row.items() if k != "transcript"},
        "transcript": {k: v for k, v in transcript.items() if k not in ("rounds", "responses", "story")},
    }
    return DebatePlan(
        line=line,
        external_id=f"{row['debate_id']}/{row['judge_id']}",
        question_set_id=str(row["question_set_id"]),
        question=str(row["question"]).strip(),
        answers=answers,
        answer_order=answer_order,
        method=method,
        protocol=protocol,
        protocol_name=f"{'interactive ' if interactive else ''}{method}",
        seats=seats,
        turns=turns,
        judge_id=str(row["judge_id"]),
        probabilities=[p_correct, 1 - p_correct],
        correct=correct,
        reason=str(row.get("explanation") or "").strip(),
        provenance=provenance,
    )


def _seats(method: str, row: dict, transcript: dict, answer_order: list) -> dict:
    if method == "debate":
        return {"A": answer_order[0], "B": answer_order[1]}
    if method == "baseline":
        return {"A": None}
    kind = str(row.get("consultant_type") or "").strip()
    if kind not in ("correct", "incorrect"):
        names = transcript.get("names") or {}
        kind = "correct" if names.get("correct") else "incorrect" if names.get("incorrect") else ""
    if not kind:
        raise ValueError("a consultancy needs consultant_type correct or incorrect")
    return {"A": 0 if kind == "correct" else 1}


def _turns(transcript: dict, seats: dict, story: str) -> tuple[list, list]:
    rounds = transcript.get("rounds") or []
    responses = transcript.get("responses") or []
    if not isinstance(rounds, list):
        raise ValueError("transcript rounds must be a list")
    side_seat = {
        ("correct" if answer == 0 else "incorrect"): seat for seat, answer in seats.items() if answer is not None
    }
    turns, kinds = [], []
    for number, round_ in enumerate(rounds):
        if not isinstance(round_, dict):
            raise ValueError(f"round {number + 1} is not an object")
        candidates = responses[number] if number < len(responses) and isinstance(responses[number], dict) else {}
        if round_.get("judge"):
            turns.append(TurnPlan(len(kinds), JUDGE, "feedback", str(round_["judge"])))
            kinds.append(JUDGE_FEEDBACK)
        speeches = []
        for side in ("correct", "incorrect"):
            argument = round_.get(side)
            if argument is None or side not in side_seat:
                continue
            speeches.append((side_seat[side], side, argument))
        if not speeches:
            continue
        round_index = len(kinds)
        kinds.append(ROUND_KINDS.get(round_.get("type"), SIMULTANEOUS if len(speeches) > 1 else SEQUENTIAL))
        for seat, side, argument in sorted(speeches):
            turns.append(_speech(round_index, seat, side, argument, story, candidates, round_, number))
    return turns, kinds


def _speech(round_index, seat, side, argument, story, candidates, round_, number) -> TurnPlan:
    payload = {"source_round": number, "source_side": side}
    if isinstance(argument, dict):
        payload["source_argument"] = argument
        argument = argument.get("argument") or argument.get("text") or json.dumps(argument)
    original = str(argument)
    marked = _MARKED_QUOTE.sub(lambda m: f"<{m.group(1)}quote>", original)
    if marked != original:
        payload["source_text"] = original  # the dataset's own <v_quote>/<u_quote> marks
    text, found = check_speech(marked, story)
    payload["quotes"] = [q.to_dict() for q in found]
    if candidates.get(side) is not None:
        payload["candidates"] = candidates[side]  # best-of-N: every candidate with its rating, as given
    if round_.get("cross_examiner") and side == "correct":
        payload["cross_examiner"] = round_["cross_examiner"]
    return TurnPlan(round_index, seat, "speech", text, payload)


def _bool(value, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ValueError(f"{name} {value!r} is not true or false")


def _confidence(value) -> float:
    """The judge's confidence in the correct answer: a fraction (0..1) or a percentage (1..100)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"confidence_correct {value!r} is not a number") from None
    if 0 <= number <= 1:
        return number
    if 1 < number <= 100:
        return number / 100
    raise ValueError(f"confidence_correct {value!r} is neither a fraction nor a percentage")
