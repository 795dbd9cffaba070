"""manage.py import_nyu [PATH]: the NYU debate dataset (2023) as questions, debates and verdicts."""

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from judging.nyu_import import DatasetMissing, import_nyu

DEFAULT_PATH = Path(settings.BASE_DIR).parent / "shared" / "datasets" / "nyu-debate-2023" / "pub"


class Command(BaseCommand):
    help = (
        "Import the NYU human debate dataset (Michael et al. 2023, CC-BY 4.0): its questions, all debate rooms "
        "with turns, quotes and judge probabilities, and the live and offline judgments as verdicts. "
        "Safe to run again: rooms already imported are left alone."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path",
            nargs="?",
            type=Path,
            default=DEFAULT_PATH,
            help=f"the dataset's pub/ folder (default: {DEFAULT_PATH})",
        )

    def handle(self, *args, path, verbosity, **options):
        started = time.monotonic()
        try:
            result = import_nyu(
                path, progress=lambda files: tqdm(files, unit="room", desc="NYU rooms", disable=verbosity == 0)
            )
        except DatasetMissing as e:
            raise CommandError(str(e)) from None
        seconds = time.monotonic() - started
        self.stdout.write(
            f"Imported {len(result.imported)} room(s) in {seconds:.1f} s: {result.questions_created} new question(s), "
            f"{result.users_created} new pseudonymous user(s), {result.verdicts_created} verdict(s). "
            f"{len(result.already_imported)} room(s) were already imported."
        )
        for name in result.changed_since_import:
            self.stderr.write(f"{name}: its file changed since it was imported; the stored debate was not updated")
        for name, reason in result.problems:
            self.stderr.write(f"{name}: not imported: {reason}")
        if result.notes:
            self.stdout.write(
                f"{len(result.notes)} room(s) have notes (kept in provenance['notes']): parts kept only "
                f"in provenance, or adjusted" + ("." if verbosity > 1 else "; -v 2 lists them.")
            )
            if verbosity > 1:
                for name, notes in result.notes.items():
                    for note in notes:
                        self.stdout.write(f"  {name}: {note}")
        if result.problems:
            self.stderr.write(f"{len(result.problems)} room(s) could not be represented (listed above).")
