"""Time an experiment's analysis page with many verdicts, generated inside PostgreSQL.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dl_bench .venv/bin/python bench/analysis_page.py \
        [--verdicts 100000] [--repeat 3] [--keep]

Migrates the database, generates a synthetic experiment (tests/synthetic.py: debate, consultancy and
direct protocols, 200 judges, 40 debaters, some debates judged twice), then times the full page
(request to rendered HTML, through Django's test client): cold (nothing cached), warm (cached
figures, as the polling page gets them), and right after one more verdict arrives (the page serves
the figures it has, marked stale, while a thread recomputes them; the recompute is timed too).
Also prints the time of each figure's queries and statistics. Deletes the data afterwards unless
--keep. The target is under a second cold.
"""

import argparse
import os
from pathlib import Path
import statistics
import sys
import time

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verdicts", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="Keep the generated experiment.")
    args = parser.parse_args()

    from bench.database import ensure_database

    ensure_database()
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from judging import analysis
    from tests import synthetic
    from tests.factories import another_ai_verdict
    from judging.models import Verdict

    if connection.vendor != "postgresql":
        sys.exit("Point DATABASE_URL at a PostgreSQL database (the benchmark generates data in SQL).")
    setup_test_environment()
    call_command("migrate", verbosity=0)
    owner, _ = User.objects.get_or_create(username="bench-researcher")
    owner.groups.add(Group.objects.get_or_create(name="researcher")[0])
    started = time.perf_counter()
    experiment = synthetic.generate(args.verdicts, owner=owner, name="Analysis bench")
    generated = time.perf_counter() - started
    verdicts = analysis.experiment_verdicts(experiment)
    print(
        f"Generated {verdicts.count():,} verdicts on {verdicts.values('debate').distinct().count():,} debates "
        f"in {generated:.1f} s"
    )
    # The page starts a thread to recompute stale figures; here the recompute is timed on its own
    # instead, so that no thread competes with (or fills the cache for) the timed renders.
    analysis.caching._refresh_in_background = lambda verdicts, n_boot, key: cache.delete(f"{key}:refreshing")
    client = Client()
    client.force_login(owner)
    url = f"/experiments/{experiment.pk}/analysis/"

    def render():
        start = time.perf_counter()
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        return time.perf_counter() - start

    try:
        cold, warm, fresh, recompute = [], [], [], []
        for _ in range(args.repeat):
            cache.clear()
            cold.append(render())
            warm.append(render())
            one = Verdict.objects.filter(debate__experiment_version__experiment=experiment, judge_kind="ai").first()
            added = another_ai_verdict(one, "late-model")
            fresh.append(render())  # the figures from before, marked stale; a thread recomputes them
            start = time.perf_counter()
            analysis.compute(verdicts)
            recompute.append(time.perf_counter() - start)
            added.delete()
        parts = {}
        with analysis.short_queries():
            start = time.perf_counter()
            data = analysis.facts(verdicts)
            parts["per-verdict facts (one query)"] = time.perf_counter() - start
        for name, run in (
            ("accuracy (3 figures)", lambda: analysis.accuracy_figures(data)),
            ("protocol differences", lambda: analysis.comparison_figure(data)),
            ("calibration", lambda: analysis.calibration_figure(data)),
            ("round by round", lambda: analysis.by_round_figure(verdicts)),
            ("debaters + Bradley-Terry", lambda: analysis.debater_figures(verdicts)),
            ("judge leaderboard", lambda: analysis.judge_figure(data)),
            ("agreement", lambda: analysis.agreement_figure(data)),
        ):
            with analysis.short_queries():
                start = time.perf_counter()
                run()
                parts[name] = time.perf_counter() - start
    finally:
        if not args.keep:
            synthetic.delete(experiment)

    print(f"\nAnalysis page, {args.verdicts:,} verdicts, {args.repeat} runs (median; min-max)")
    print(f"{'render':<34}{'seconds':>10}")
    for label, times in (
        ("cold (nothing cached)", cold),
        ("warm (figures cached)", warm),
        ("a verdict arrived (served stale)", fresh),
        ("background recompute", recompute),
    ):
        print(f"{label:<34}{statistics.median(times):>10.3f}   ({min(times):.3f}-{max(times):.3f})")
    print(f"\n{'figure (one run, uncached)':<34}{'seconds':>10}")
    for name, seconds in parts.items():
        print(f"{name:<34}{seconds:>10.3f}")


if __name__ == "__main__":
    main()
