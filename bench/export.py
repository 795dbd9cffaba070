"""Export speed: our JSONL verdict export against PostgreSQL's own COPY of the same rows, side by side.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dl_bench .venv/bin/python bench/export.py \
        [--verdicts 1000000] [--repeat 1] [--keep]

Generates an experiment of N verdicts with full transcripts inside PostgreSQL (tests/synthetic.py:
INSERT ... SELECT over generate_series), then, in one run and into files in the same folder:
  - COPY: PostgreSQL's `COPY (SELECT ...) TO STDOUT` of the same rows (each verdict joined with its
    debate and question, its turns and seats as json_agg of the rows), read by psycopg and written
    out as it arrives;
  - JSONL: our export (judging.export.jsonl_lines, what `manage.py export_verdicts` writes), with
    pseudonymised identities;
  - command: `manage.py export_verdicts` itself (JSONL, datasheet, experiment versions).
For each: seconds, rows and megabytes per second, and memory: the largest resident set size seen
while it ran (sampled every 20,000 rows) and the process's peak RSS (getrusage) before and after.
The target: JSONL at most 2x COPY's time, with memory that stays flat as rows go by.
"""

import argparse
import os
from pathlib import Path
import resource
import sys
import tempfile
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

PAGE = os.sysconf("SC_PAGE_SIZE")


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def copy_sql(version_ids) -> str:
    ids = ",".join(str(int(i)) for i in version_ids)
    return f"""
        SELECT v.*, d.*, q.*,
          (SELECT json_agg(t ORDER BY t.id) FROM debates_turn t WHERE t.debate_id = d.id) AS turns,
          (SELECT json_agg(p ORDER BY p.id) FROM debates_participant p WHERE p.debate_id = d.id) AS participants
        FROM judging_verdict v JOIN debates_debate d ON d.id = v.debate_id
        JOIN debates_question q ON q.id = d.question_id
        LEFT JOIN debates_experimentversion ev ON ev.id = d.experiment_version_id
        WHERE d.experiment_version_id IN ({ids})
        ORDER BY v.id"""


class Run:
    def __init__(self, name):
        self.name, self.rows, self.bytes, self.max_rss = name, 0, 0, current_rss_mb()
        self.peak_before = peak_rss_mb()

    def count(self, written: int):
        self.rows += 1
        self.bytes += written
        if self.rows % 20_000 == 0:
            self.max_rss = max(self.max_rss, current_rss_mb())

    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        self.max_rss = max(self.max_rss, current_rss_mb())
        self.peak_after = peak_rss_mb()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verdicts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="Run each export this many times (best time kept).")
    parser.add_argument("--keep", action="store_true", help="Keep the generated experiment.")
    parser.add_argument("--folder", help="Where to write the exports (default: a temporary folder).")
    args = parser.parse_args()

    from bench.database import ensure_database

    ensure_database()
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from judging import export
    from tests import synthetic

    if connection.vendor != "postgresql":
        sys.exit("Point DATABASE_URL at a PostgreSQL database.")
    call_command("migrate", verbosity=0)
    owner, _ = User.objects.get_or_create(username="bench-researcher")
    start = time.perf_counter()
    experiment = synthetic.generate(args.verdicts, owner=owner, name="Export bench")
    print(f"Generated {args.verdicts:,} verdicts with transcripts in {time.perf_counter() - start:.1f} s")
    version_ids = list(experiment.versions.values_list("id", flat=True))
    options = export.ExportOptions(experiment_ids=[experiment.pk])
    folder = Path(args.folder or tempfile.mkdtemp(prefix="export-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    results = {}

    def keep_best(run):
        if run.name not in results or run.seconds < results[run.name].seconds:
            results[run.name] = run

    try:
        for _ in range(args.repeat):
            with Run("PostgreSQL COPY (SELECT ...) TO STDOUT") as run, open(folder / "copy.txt", "wb") as sink:
                with connection.cursor() as cursor:
                    with cursor.cursor.copy(f"COPY ({copy_sql(version_ids)}) TO STDOUT") as copy:
                        for row in copy:
                            sink.write(row)
                            run.count(len(row))
            keep_best(run)
            (folder / "copy.txt").unlink()
            with Run("our JSONL export") as run, open(folder / export.JSONL_NAME, "wb") as sink:
                for line in export.jsonl_lines(options):
                    sink.write(line)
                    run.count(len(line))
            keep_best(run)
            (folder / export.JSONL_NAME).unlink()
            with Run("manage.py export_verdicts (JSONL)") as run:
                call_command(
                    "export_verdicts", str(folder / "command"), "--experiment", str(experiment.pk), verbosity=0
                )
                run.rows = args.verdicts
                run.bytes = (folder / "command" / export.JSONL_NAME).stat().st_size
            keep_best(run)
            for path in (folder / "command").iterdir():
                path.unlink()
    finally:
        if not args.keep:
            synthetic.delete(experiment)

    copy_seconds = results["PostgreSQL COPY (SELECT ...) TO STDOUT"].seconds
    print(f"\nExport of {args.verdicts:,} verdicts with transcripts (best of {args.repeat})")
    header = (
        f"{'method':<38}{'seconds':>9}{'x COPY':>8}{'rows/s':>10}{'MB':>8}{'MB/s':>7}"
        f"{'max RSS MB':>12}{'peak RSS MB before/after':>26}"
    )
    print(header)
    print("-" * len(header))
    for run in results.values():
        print(
            f"{run.name:<38}{run.seconds:>9.1f}{run.seconds / copy_seconds:>8.2f}{run.rows / run.seconds:>10,.0f}"
            f"{run.bytes / 2**20:>8,.0f}{run.bytes / 2**20 / run.seconds:>7.1f}{run.max_rss:>12.0f}"
            f"{run.peak_before:>14.0f} / {run.peak_after:<9.0f}"
        )


if __name__ == "__main__":
    main()
