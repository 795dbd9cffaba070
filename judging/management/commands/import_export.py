"""Import a verdict export (a folder, a downloaded zip or a JSONL file) into this DebateLab."""

import zipfile
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from judging import export
from judging.reimport import ImportRefused, import_dataset


def _read(path: Path) -> tuple[list[bytes], list[bytes]]:
    """(verdict lines, experiment version lines) from a folder, a zip or a .jsonl file."""
    if path.is_dir():
        records = path / export.JSONL_NAME
        versions = path / export.VERSIONS_NAME
        if not records.exists():
            raise CommandError(f"{path} has no {export.JSONL_NAME} (export with --format jsonl)")
        return records.read_bytes().splitlines(), versions.read_bytes().splitlines() if versions.exists() else []
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if export.JSONL_NAME not in names:
                raise CommandError(f"{path} has no {export.JSONL_NAME} (download the JSONL export)")
            versions = archive.read(export.VERSIONS_NAME).splitlines() if export.VERSIONS_NAME in names else []
            return archive.read(export.JSONL_NAME).splitlines(), versions
    return path.read_bytes().splitlines(), []


class Command(BaseCommand):
    help = "Import the verdicts, debates, turns and questions of an export (export_verdicts --format jsonl)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="An export folder, a downloaded export zip, or a verdicts.jsonl file.")
        parser.add_argument("--owner", help="Username that will own the imported experiments.")

    def handle(self, *args, **options):
        path = Path(options["path"])
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        owner = None
        if options["owner"]:
            owner = get_user_model().objects.filter(username=options["owner"]).first()
            if owner is None:
                raise CommandError(f"no user called {options['owner']!r}")
        records, versions = _read(path)
        with tqdm(total=len(records), unit="verdict", disable=options["verbosity"] == 0) as progress:
            try:
                summary = import_dataset(records, versions, owner=owner, on_record=lambda: progress.update(1))
            except ImportRefused as refused:
                raise CommandError(f"{path}: {refused}; nothing was imported") from None
        self.stdout.write(
            f"Imported {summary.verdicts} verdicts on {summary.debates} debates "
            f"({summary.questions} new questions, {summary.users} new accounts, "
            f"{summary.experiment_versions} experiment versions)."
        )
