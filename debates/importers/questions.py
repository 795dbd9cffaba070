"""Storing checked question rows. Idempotent on (source, id): a row that matches the stored
question changes nothing, a changed row updates it once, and a question that already has
debates is never changed (its debates refer to its answers by position)."""

from dataclasses import dataclass, field
from pathlib import Path

from django.db import transaction

from ..models import Question
from .question_rows import QuestionRow, RowError, read_question_file

STORED_FIELDS = ("text", "answers", "correct_index", "hidden_material", "public_material", "title", "metadata")


@dataclass
class QuestionImport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list = field(default_factory=list)  # RowError
    imported: bool = False  # False: the file had errors and nothing was written

    @property
    def skipped_lines(self) -> list[int]:
        return sorted({e.line for e in self.errors if e.line is not None})


def import_question_file(
    path: Path, *, fmt: str | None = None, default_source: str = "", skip_invalid: bool = False, dry_run: bool = False
) -> QuestionImport:
    """Checks every row first; writes nothing when any row is wrong, unless skip_invalid."""
    rows, errors = read_question_file(path, fmt, default_source)
    with transaction.atomic():
        existing = _stored_questions(rows)
        rows, conflicts = _without_locked_changes(rows, existing)
        result = QuestionImport(errors=sorted(errors + conflicts, key=lambda e: e.line or 0))
        if (result.errors and not skip_invalid) or dry_run or not rows:
            _count(result, rows, existing)
            return result
        _write(rows, existing, result)
        result.imported = True
    return result


def _stored_questions(rows: list[QuestionRow]) -> dict:
    stored = {}
    for source in {row.source for row in rows}:
        ids = [row.external_id for row in rows if row.source == source]
        for question in Question.objects.filter(source=source, external_id__in=ids).select_for_update():
            stored[(source, question.external_id)] = question
    return stored


def _without_locked_changes(rows, existing):
    """A question with debates keeps its content: such a changed row is an error."""
    keep, errors = [], []
    changed = [existing[_key(r)] for r in rows if _key(r) in existing and _differs(existing[_key(r)], r)]
    with_debates = set(
        Question.objects.filter(pk__in=[q.pk for q in changed], debates__isnull=False).values_list("pk", flat=True)
    )
    for row in rows:
        question = existing.get(_key(row))
        if question is not None and question.pk in with_debates:
            errors.append(
                RowError(
                    row.line,
                    "id",
                    f"question {row.external_id!r} (source {row.source!r}) already "
                    f"has debates and cannot change; give the new version a new id",
                )
            )
        else:
            keep.append(row)
    return keep, errors


def _count(result: QuestionImport, rows, existing):
    for row in rows:
        question = existing.get(_key(row))
        if question is None:
            result.created += 1
        elif _differs(question, row):
            result.updated += 1
        else:
            result.unchanged += 1


def _write(rows, existing, result: QuestionImport):
    new, changed = [], []
    for row in rows:
        question = existing.get(_key(row))
        if question is None:
            new.append(
                Question(kind=Question.KIND_TEXT, source=row.source, external_id=row.external_id, **_values(row))
            )
        elif _differs(question, row):
            for name, value in _values(row).items():
                setattr(question, name, value)
            changed.append(question)
    Question.objects.bulk_create(new)
    Question.objects.bulk_update(changed, list(STORED_FIELDS))
    result.created, result.updated = len(new), len(changed)
    result.unchanged = len(rows) - len(new) - len(changed)


def _key(row: QuestionRow):
    return row.source, row.external_id


def _values(row: QuestionRow) -> dict:
    return {
        "text": row.text,
        "answers": list(row.answers),
        "correct_index": row.correct_index,
        "hidden_material": row.hidden_material,
        "public_material": row.public_material,
        "title": row.title,
        "metadata": dict(row.metadata),
    }


def _differs(question: Question, row: QuestionRow) -> bool:
    return any(getattr(question, name) != value for name, value in _values(row).items())
