"""Write a verdict dataset (JSONL, CSV tables or Parquet) with its datasheet into a folder."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from judging import export
from judging.export.datasheet import datasheet


class Command(BaseCommand):
    help = "Export verdicts with their debates' transcripts, a datasheet and the experiment definitions."

    def add_arguments(self, parser):
        parser.add_argument(
            "out", help="Folder to write into (created if missing; existing export files are replaced)."
        )
        parser.add_argument("--format", choices=export.FORMATS, default="jsonl")
        parser.add_argument(
            "--experiment",
            type=int,
            action="append",
            dest="experiments",
            help="Only this experiment's verdicts (repeatable). Default: every verdict.",
        )
        parser.add_argument(
            "--experiment-version",
            type=int,
            dest="experiment_version",
            help="Only debates of this experiment version number.",
        )
        parser.add_argument("--source", help="Only debates imported from this source (e.g. nyu-debate-2023).")
        parser.add_argument("--protocol", help="Only debates of this protocol name.")
        parser.add_argument("--judge-kind", choices=["human", "ai"])
        parser.add_argument(
            "--include-hidden", action="store_true", help="Include hidden passages, images and debaters' private notes."
        )
        parser.add_argument(
            "--identities",
            action="store_true",
            help="Usernames instead of per-export pseudonyms (the operator's decision).",
        )
        parser.add_argument(
            "--key",
            help="Hex key for the pseudonyms, to give the same pseudonyms as another "
            "export made with it (default: a fresh random key, forgotten afterwards).",
        )
        parser.add_argument("--licence", default="CC-BY-4.0", help="Licence stated in the datasheet.")

    def handle(self, *args, **options):
        settings = export.ExportOptions(
            experiment_ids=options["experiments"],
            version_number=options["experiment_version"],
            source=options["source"],
            protocol_name=options["protocol"],
            judge_kind=options["judge_kind"],
            include_hidden=options["include_hidden"],
            identities=options["identities"],
            licence=options["licence"],
        )
        if options["key"]:
            try:
                settings.key = bytes.fromhex(options["key"])
            except ValueError:
                raise CommandError("--key must be hexadecimal") from None
        if options["format"] == "csv":
            try:
                export.check_postgresql()
            except export.ExportError as error:
                raise CommandError(str(error)) from None
        out = Path(options["out"])
        out.mkdir(parents=True, exist_ok=True)
        total = export.verdict_queryset(settings).count()
        fmt = options["format"]
        with tqdm(total=total, unit="verdict", disable=options["verbosity"] == 0) as progress:
            if fmt == "jsonl":
                with open(out / export.JSONL_NAME, "wb") as sink:
                    for count, line in enumerate(export.jsonl_lines(settings), start=1):
                        sink.write(line)
                        if count % 1000 == 0:
                            progress.update(1000)
                    progress.update(progress.total - progress.n)
            elif fmt == "parquet":  # written aside and renamed, so a failed export leaves no half file
                partial = out / f"{export.PARQUET_NAME}.partial"
                try:
                    export.write_parquet(settings, str(partial), on_rows=progress.update)
                except Exception as error:
                    partial.unlink(missing_ok=True)
                    raise CommandError(f"the Parquet export failed, nothing was written: {error}") from error
                partial.replace(out / export.PARQUET_NAME)
            else:
                for table in export.CSV_TABLES:
                    with open(out / f"{table}.csv", "wb") as sink:
                        for chunk in export.chunked(export.csv_lines(table, settings)):
                            sink.write(chunk)
                    progress.set_postfix_str(f"{table}.csv")
                progress.update(total)
        with open(out / export.VERSIONS_NAME, "wb") as sink:
            sink.writelines(export.version_lines(settings))
        (out / export.DATASHEET_NAME).write_text(datasheet(settings, fmt))
        if options["verbosity"]:
            self.stdout.write(f"Wrote {total} verdicts to {out} ({fmt}) with {export.DATASHEET_NAME}.")
