"""manage.py import_questions FILE: questions from JSONL or CSV (schema in docs/datasets.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from debates.importers.questions import import_question_file


class Command(BaseCommand):
    help = (
        "Import questions from a JSONL or CSV file (schema: docs/datasets.md). Every row is checked "
        "first; nothing is imported from a file with errors unless --skip-invalid is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--format", choices=["jsonl", "csv"], help="default: from the file extension")
        parser.add_argument("--source", default="", help="source for rows that do not name one")
        parser.add_argument("--skip-invalid", action="store_true", help="import the good rows, report the others")
        parser.add_argument("--dry-run", action="store_true", help="check and count, write nothing")

    def handle(self, *args, path, format, source, skip_invalid, dry_run, **options):
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            result = import_question_file(
                path, fmt=format, default_source=source, skip_invalid=skip_invalid, dry_run=dry_run
            )
        except (ValueError, UnicodeDecodeError) as e:
            raise CommandError(f"{path}: {e}") from None
        for error in result.errors:
            self.stderr.write(f"{path}: {error}")
        counts = f"{result.created} new, {result.updated} updated, {result.unchanged} unchanged"
        if result.errors and not skip_invalid:
            raise CommandError(
                f"{path} has errors; nothing was imported (fix them, or pass --skip-invalid to import the other rows)"
            )
        if result.errors and not result.imported and not dry_run:
            raise CommandError(f"{path} has no valid rows; nothing was imported")
        if dry_run:
            self.stdout.write(f"Dry run, nothing written: would import {counts}.")
        else:
            skipped = f"; skipped {len(result.skipped_lines)} row(s) with errors" if result.errors else ""
            self.stdout.write(f"Imported {counts}{skipped}.")
