from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from debates.models import Debate, Experiment, Participant
from debates.protocol import JUDGE
from judging import bots, crowd
from judging.models import StudyParticipant, Verdict


class Command(BaseCommand):
    help = (
        "Simulated judges take part in an experiment's crowd study through the real pages and "
        "websocket of a running server, then the bonus file is written. For dry runs and tests."
    )

    def add_arguments(self, parser):
        parser.add_argument("experiment", type=int, help="experiment id")
        parser.add_argument("--judges", type=int, default=10)
        parser.add_argument(
            "--dropouts", type=int, default=0, help="how many bots abandon their debate once seated as its judge"
        )
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running DebateLab server")
        parser.add_argument("--concurrency", type=int, default=20, help="bots active at once")
        parser.add_argument("--accuracy", type=float, default=0.8, help="how often a bot's verdict is right")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--timeout", type=int, default=600, help="seconds each bot may take")
        parser.add_argument("--prefix", default="BOT", help="bots' PROLIFIC_PID prefix (use a new one per run)")
        parser.add_argument("--bonus-file", type=Path, help="where to write the bonus CSV (default: var/)")

    def handle(
        self, experiment, judges, dropouts, url, concurrency, accuracy, seed, timeout, prefix, bonus_file, **options
    ):
        found = Experiment.objects.filter(pk=experiment).first()
        if found is None:
            raise CommandError(f"no experiment {experiment}")
        version = crowd.study_version(found)
        if version is None:
            raise CommandError(f"{found} has not started: start it first")
        if not 1 <= judges <= 10_000:
            raise CommandError("--judges must be between 1 and 10000")
        if not 0 <= dropouts < judges:
            raise CommandError("--dropouts must be at least 0 and fewer than --judges")
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
            dropouts=dropouts,
            debates=Debate.objects.filter(experiment_version=version).count(),
        )
        for result in run["results"]:
            if result.error:
                self.stderr.write(f"{result.pid}: {result.error}")
        batch = crowd.make_bonus_batch(found)
        figures = dict(run["figures"], **_dropout_figures(found, run["results"]))
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


def _dropout_figures(experiment: Experiment, results) -> dict:
    """From the database after the run: how many abandoned seats were freed (the bot no longer
    holds it) and re-filled (another judge gave the debate its verdict), and the bots' statuses."""
    dropped = {r.pid: r.dropped_debate for r in results if r.dropped_debate is not None}
    people = StudyParticipant.objects.filter(experiment=experiment, external_id__in=[r.pid for r in results])
    statuses: dict[str, int] = {}
    for status in people.values_list("status", flat=True):
        statuses[status] = statuses.get(status, 0) + 1
    users = dict(people.filter(external_id__in=dropped).values_list("external_id", "user_id"))
    freed = refilled = 0
    for pid, debate_id in dropped.items():
        if Participant.objects.filter(debate_id=debate_id, seat=JUDGE, user_id=users.get(pid)).exists():
            continue
        freed += 1
        refilled += Verdict.objects.filter(debate_id=debate_id, live=True).exclude(judge_id=users.get(pid)).exists()
    return {"seats_freed": freed, "seats_refilled": refilled, "end_statuses": dict(sorted(statuses.items()))}
