"""Reading question files (JSONL or CSV) into checked rows. Pure module (no Django).

Every problem becomes a RowError with the line it starts on and the field at fault, so a
researcher can fix a file from the report alone. The schema is documented in docs/datasets.md.
"""

import csv
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

REQUIRED = ("id", "question", "answers", "correct_index")
OPTIONAL = ("hidden_passage", "public_context", "title", "source", "metadata")
FIELDS = REQUIRED + OPTIONAL
MAX_ID, MAX_TITLE, MAX_SOURCE = 200, 300, 200
ANSWER_COLUMN = re.compile(r"^answer_(\d+)$")
FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


@dataclass(frozen=True)
class RowError:
    line: int | None  # None: the whole file
    field: str
    message: str

    def __str__(self):
        where = f"line {self.line}" if self.line is not None else "file"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True)
class QuestionRow:
    line: int
    source: str
    external_id: str
    text: str
    answers: list
    correct_index: int
    hidden_material: str = ""
    public_material: str = ""
    title: str = ""
    metadata: dict = field(default_factory=dict)


def format_of(path: Path, given: str | None = None) -> str:
    if given:
        if given not in ("jsonl", "csv"):
            raise ValueError(f"unknown format {given!r}: use jsonl or csv")
        return given
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(
            f"cannot tell the format of {path.name} from its extension (use .jsonl or .csv, or give the format)"
        ) from None


def read_question_file(path: Path, fmt: str | None = None, default_source: str = ""):
    """Returns (rows, errors). Rows with errors are left out of `rows`."""
    text = Path(path).read_text(encoding="utf-8-sig")
    if format_of(Path(path), fmt) == "csv":
        return parse_csv(text, default_source)
    return parse_jsonl(text, default_source)


def parse_jsonl(text: str, default_source: str = ""):
    records = []
    errors = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(RowError(line_number, "", f"not valid JSON ({e.msg} at column {e.colno})"))
            continue
        if not isinstance(record, dict):
            errors.append(RowError(line_number, "", "each line must be a JSON object"))
            continue
        records.append((line_number, record))
    return _check_records(records, errors, default_source)


def parse_csv(text: str, default_source: str = ""):
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        return [], [RowError(None, "", "the file is empty")]
    except csv.Error as e:
        return [], [RowError(1, "", f"not valid CSV ({e})")]
    header = [name.strip() for name in header]
    errors = _check_header(header)
    if errors:
        return [], errors
    records = []
    last_line = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            errors.append(RowError(last_line + 1, "", f"not valid CSV ({e})"))
            break
        first_line, last_line = last_line + 1, reader.line_num
        if not cells or not any(c.strip() for c in cells):
            continue
        if len(cells) != len(header):
            errors.append(RowError(first_line, "", f"the row has {len(cells)} cells but the header has {len(header)}"))
            continue
        record, problems = _record_from_cells(dict(zip(header, cells)), first_line)
        errors += problems
        if not problems:
            records.append((first_line, record))
    return _check_records(records, errors, default_source)


def _check_header(header: list[str]) -> list[RowError]:
    errors = []
    answer_columns = sorted(int(m.group(1)) for m in map(ANSWER_COLUMN.match, header) if m)
    known = set(FIELDS) | {f"answer_{n}" for n in answer_columns}
    unknown = [name for name in header if name not in known]
    if unknown:
        errors.append(
            RowError(
                1, "", f"unknown column(s): {', '.join(unknown)} (known: {', '.join(FIELDS)}, answer_1, answer_2, ...)"
            )
        )
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        errors.append(RowError(1, "", f"column(s) given twice: {', '.join(duplicated)}"))
    missing = [name for name in REQUIRED if name != "answers" and name not in header]
    if missing:
        errors.append(RowError(1, "", f"missing column(s): {', '.join(missing)}"))
    if "answers" in header and answer_columns:
        errors.append(
            RowError(
                1,
                "answers",
                "give the answers either in one 'answers' column (a JSON list) "
                "or in answer_1, answer_2, ... columns, not both",
            )
        )
    elif "answers" not in header and not answer_columns:
        errors.append(
            RowError(1, "answers", "missing: add an 'answers' column (a JSON list) or answer_1, answer_2, ... columns")
        )
    elif answer_columns and answer_columns != list(range(1, len(answer_columns) + 1)):
        errors.append(RowError(1, "answers", "answer columns must be numbered answer_1, answer_2, ... without gaps"))
    return errors


def _record_from_cells(cells: dict, line: int):
    """CSV cells are strings: decode the JSON-valued ones and gather answer_N columns."""
    errors = []
    record = {name: value for name, value in cells.items() if not ANSWER_COLUMN.match(name) and value != ""}
    for name in ("answers", "metadata"):
        if name in record:
            try:
                record[name] = json.loads(record[name])
            except json.JSONDecodeError as e:
                errors.append(RowError(line, name, f"not valid JSON ({e.msg})"))
    if "correct_index" in record:
        value = record["correct_index"].strip()
        record["correct_index"] = int(value) if re.fullmatch(r"-?\d+", value) else value
    numbered = [(int(ANSWER_COLUMN.match(k).group(1)), v) for k, v in cells.items() if ANSWER_COLUMN.match(k)]
    if numbered:
        answers = [v for _, v in sorted(numbered)]
        while answers and not answers[-1].strip():
            answers.pop()
        record["answers"] = answers
    return record, errors


def _check_records(records, errors, default_source):
    rows = []
    first_line_of = {}
    for line, record in records:
        row, problems = check_record(record, line, default_source)
        if row is not None:
            key = (row.source, row.external_id)
            if key in first_line_of:
                problems.append(
                    RowError(
                        line,
                        "id",
                        f"{row.external_id!r} (source {row.source!r}) already appears on line {first_line_of[key]}",
                    )
                )
            else:
                first_line_of[key] = line
        errors += problems
        if not problems:
            rows.append(row)
    if not records and not errors:
        errors.append(RowError(None, "", "the file has no questions"))
    return rows, sorted(errors, key=lambda e: e.line or 0)


def check_record(record: dict, line: int, default_source: str = ""):
    """One question as a dict of Python values -> (QuestionRow or None, errors)."""
    errors = []

    def problem(name, message):
        errors.append(RowError(line, name, message))

    unknown = sorted(set(record) - set(FIELDS))
    if unknown:
        problem("", f"unknown field(s): {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    for name in REQUIRED:
        if record.get(name) in (None, ""):
            problem(name, "missing")
    external_id = _text(record.get("id"), "id", problem, allow_number=True, max_length=MAX_ID)
    text = _text(record.get("question"), "question", problem)
    answers = _answers(record.get("answers"), problem)
    correct_index = _correct_index(record.get("correct_index"), answers, problem)
    hidden = _text(record.get("hidden_passage"), "hidden_passage", problem, strip=False)
    public = _text(record.get("public_context"), "public_context", problem, strip=False)
    title = _text(record.get("title"), "title", problem, max_length=MAX_TITLE)
    source = _text(record.get("source"), "source", problem, max_length=MAX_SOURCE) or default_source
    if not source and "source" not in {e.field for e in errors}:
        problem("source", "missing: give a source column/field or a default source for the file")
    metadata = record.get("metadata")
    if metadata in (None, ""):
        metadata = {}
    elif not isinstance(metadata, dict):
        problem("metadata", "must be a JSON object")
    if errors:
        return None, errors
    return QuestionRow(
        line=line,
        source=source,
        external_id=external_id,
        text=text,
        answers=answers,
        correct_index=correct_index,
        hidden_material=hidden,
        public_material=public,
        title=title,
        metadata=metadata,
    ), []


def _text(value, name, problem, allow_number=False, max_length=None, strip=True):
    if value is None:
        return ""
    if allow_number and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        problem(name, f"must be text, not {type(value).__name__}")
        return ""
    if strip:
        value = value.strip()
    if max_length and len(value) > max_length:
        problem(name, f"too long ({len(value)} characters; at most {max_length})")
    return value


def _answers(value, problem):
    if value in (None, ""):
        return []
    if not isinstance(value, list):
        problem("answers", "must be a list of answer texts")
        return []
    if len(value) < 2:
        problem("answers", f"give at least two answers (found {len(value)})")
    answers = []
    for position, answer in enumerate(value, start=1):
        if not isinstance(answer, str) or not answer.strip():
            problem("answers", f"answer {position} must be non-empty text")
        else:
            answers.append(answer.strip())
    repeated = sorted({a for a in answers if answers.count(a) > 1})
    if repeated:
        problem("answers", f"answer(s) given twice: {', '.join(map(repr, repeated))}")
    return answers


def _correct_index(value, answers, problem):
    if value in (None, ""):
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problem("correct_index", f"must be a whole number counted from 0, not {value!r}")
        return None
    if answers and not 0 <= value < len(answers):
        problem(
            "correct_index",
            f"{value} is not an answer position: with {len(answers)} answers use "
            f"0 to {len(answers) - 1} (counted from 0)",
        )
        return None
    return value
