"""manage.py import_quality FILE: QuALITY articles and questions (format in docs/datasets.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from debates.importers.quality import import_quality
from debates.importers.quality_format import SOURCE, QualityFileError


class Command(BaseCommand):
    help = (
        "Import a QuALITY JSON-lines file (QuALITY.v1.0.1.train, .dev): each article once as a story, its "
        "questions pointing at it, 1-based gold labels converted. A file with any bad label is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--source", default=SOURCE, help=f"question source name (default {SOURCE})")

    def handle(self, *args, path, source, **options):
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            result = import_quality(path, source)
        except QualityFileError as error:
            for line, message in error.problems:
                self.stderr.write(f"{path}: line {line}: {message}")
            raise CommandError(f"{path} has {len(error.problems)} problem(s); nothing was imported") from None
        except UnicodeDecodeError as error:
            raise CommandError(f"{path}: not UTF-8 text ({error})") from None
        self.stdout.write(
            f"Imported {result.stories_created} new stories ({result.stories_existing} stored before) "
            f"and {result.questions_created} new questions ({result.questions_existing} stored before)."
        )
