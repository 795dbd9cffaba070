from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from debates.models import Debate, Experiment
from judging import bots, crowd


class Command(BaseCommand):
    help = (
        "Simulated judges take part in an experiment's crowd study through the real pages and "
        "websocket of a running server, then the bonus file is written. For dry runs and tests."
    )

    def add_arguments(self, parser):
        parser.add_argument("experiment", type=int, help="experiment id")
        parser.add_argument("--judges", type=int, default=10)
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running DebateLab server")
        parser.add_argument("--concurrency", type=int, default=20, help="bots active at once")
        parser.add_argument("--accuracy", type=float, default=0.8, help="how often a bot's verdict is right")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--timeout", type=int, default=600, help="seconds each bot may take")
        parser.add_argument("--prefix", default="BOT", help="bots' PROLIFIC_PID prefix (use a new one per run)")
        parser.add_argument("--bonus-file", type=Path, help="where to write the bonus CSV (default: var/)")

    def handle(self, experiment, judges, url, concurrency, accuracy, seed, timeout, prefix, bonus_file, **options):
        found = Experiment.objects.filter(pk=experiment).first()
        if found is None:
            raise CommandError(f"no experiment {experiment}")
        version = crowd.study_version(found)
        if version is None:
            raise CommandError(f"{found} has not started: start it first")
        if not 1 <= judges <= 10_000:
            raise CommandError("--judges must be between 1 and 10000")
        run = bots.run_bots(
            url,
            found.pk,
            crowd.study_settings(version),
            judges,
            concurrency=concurrency,
            accuracy=accuracy,
            seed=seed,
            timeout=timeout,
            prefix=prefix,
            truth_for=_truth,
        )
        for result in run["results"]:
            if result.error:
                self.stderr.write(f"{result.pid}: {result.error}")
        batch = crowd.make_bonus_batch(found)
        figures = run["figures"]
        for key, value in figures.items():
            self.stdout.write(f"{key}: {value}")
        if batch is not None:
            path = bonus_file or Path("var") / f"experiment-{found.pk}-bonus-{batch}.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(crowd.bonus_csv(found, batch))
            self.stdout.write(f"bonus file {batch}: {path}")
        if figures["errors"]:
            raise CommandError(f"{figures['errors']} bot(s) failed")


def _truth(debate_id: int) -> int:
    """Runs in the bots' threads: each hands its database connection back at once, so many bots
    never hold more connections than the pool has (DATABASE_POOL_SIZE)."""
    try:
        debate = Debate.objects.select_related("question").get(pk=debate_id)
        return debate.shown_answer_order().index(debate.question.correct_index)
    finally:
        connection.close()
