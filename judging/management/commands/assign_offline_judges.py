"""Offline judging assignments for finished debates outside experiments (an imported dataset, say),
or to top up an experiment's: each debate gets offline judges until it has --per-debate of them."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from debates.models import Debate
from judging import offline
from judging.models import Assignment


class Command(BaseCommand):
    help = (
        "Assign offline judges to finished debates (step by step or all at once). A person judges each "
        "question at most once and never one they debated; judges with the least open work go first."
    )

    def add_arguments(self, parser):
        parser.add_argument("--source", help="Only debates imported from this source (e.g. nyu-debate-2023).")
        parser.add_argument("--experiment-version", type=int, help="Only debates of this experiment version id.")
        parser.add_argument("--judges", help="Comma-separated usernames (default: everyone with the judge role).")
        parser.add_argument("--mode", choices=offline.MODES, default=Assignment.STEPWISE)
        parser.add_argument("--per-debate", type=int, default=1, help="Offline judgments wanted per debate.")
        parser.add_argument("--limit", type=int, help="At most this many debates, oldest first.")

    def handle(self, *args, **options):
        if options["per_debate"] < 1:
            raise CommandError("--per-debate must be at least 1")
        pool = [name.strip() for name in options["judges"].split(",") if name.strip()] if options["judges"] else None
        if pool:
            missing = set(pool) - set(
                get_user_model().objects.filter(username__in=pool).values_list("username", flat=True)
            )
            if missing:
                raise CommandError(f"no such users: {', '.join(sorted(missing))}")
        debates = Debate.objects.filter(status__in=offline.FINISHED).order_by("id")
        if options["source"]:
            debates = debates.filter(source=options["source"])
        if options["experiment_version"]:
            debates = debates.filter(experiment_version_id=options["experiment_version"])
        if options["limit"]:
            debates = debates[: options["limit"]]
        created, short = 0, 0
        for debate in debates:
            new = offline.fill(debate, options["per_debate"], pool, options["mode"])
            created += len(new)
            short += debate.offline_assignments.count() < options["per_debate"]
        self.stdout.write(f"{created} new offline assignments; {short} debates still lack eligible judges")
