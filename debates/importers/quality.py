"""Storing a QuALITY file: each article once as a Story, each question as a Question pointing at
it. All or nothing: a file with any bad line is refused (quality_format.QualityFileError) and
nothing is written. Idempotent on (source, id): stories and questions stored before are kept."""

from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from ..models import Question, Story
from .quality_format import SOURCE, QualityFileError, read_quality


@dataclass
class QualityImport:
    stories_created: int = 0
    stories_existing: int = 0
    questions_created: int = 0
    questions_existing: int = 0


def import_quality(path: Path, source: str = SOURCE) -> QualityImport:
    with open(path, encoding="utf-8") as lines:
        planned = read_quality(lines)
    result = QualityImport()
    with transaction.atomic():
        stories = {}
        for article_id, plan in planned.stories.items():
            story = Story.objects.filter(source=source, external_id=article_id).first()
            if story is None:
                story = Story.objects.create(
                    source=source, external_id=article_id, title=plan.title, text=plan.text, metadata=plan.metadata
                )
                result.stories_created += 1
            elif story.text != plan.text:
                raise QualityFileError(
                    [
                        (
                            plan.line,
                            f"article {article_id} differs from the story stored before "
                            f"(its questions' debates quote that text)",
                        )
                    ]
                )
            else:
                result.stories_existing += 1
            stories[article_id] = story
        stored = set(
            Question.objects.filter(
                source=source, external_id__in=[q.external_id for q in planned.questions]
            ).values_list("external_id", flat=True)
        )
        new = [
            Question(
                kind=Question.KIND_TEXT,
                text=q.text,
                answers=q.answers,
                correct_index=q.correct_index,
                story=stories[q.article_id],
                title=stories[q.article_id].title,
                source=source,
                external_id=q.external_id,
                metadata=q.metadata,
            )
            for q in planned.questions
            if q.external_id not in stored
        ]
        Question.objects.bulk_create(new)
        result.questions_created, result.questions_existing = len(new), len(planned.questions) - len(new)
    return result
