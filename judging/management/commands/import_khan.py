"""manage.py import_khan FILE: the human-judged LLM debates of Khan et al. 2024 (docs/datasets.md)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from debates.importers.khan_format import KhanFileError
from judging.khan_import import import_khan


class Command(BaseCommand):
    help = (
        "Import Khan et al. 2024 (ucl-dark/llm_debate) judged debates from their CSV or JSON lines: needs the "
        "QuALITY stories imported first (manage.py import_quality). A file with any bad row is refused."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)

    def handle(self, *args, path, **options):
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        try:
            result = import_khan(path)
        except KhanFileError as error:
            for line, message in error.problems:
                self.stderr.write(f"{path}: line {line}: {message}")
            raise CommandError(f"{path} has {len(error.problems)} problem(s); nothing was imported") from None
        self.stdout.write(
            f"Imported {result.debates} judged debate(s) ({len(result.already_imported)} imported before), "
            f"{result.questions_created} new question(s), {result.users_created} new judge account(s); "
            f"{result.quotes_verified} of {result.quotes_checked} quotes verified against the stories; "
            f"best-of-N candidates kept for {result.candidates_kept} speech(es)."
        )
