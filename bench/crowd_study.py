"""A crowd study at a study's size: hundreds of simulated Prolific judges at once, on the production
processes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dl_crowd_bench REDIS_URL=redis://127.0.0.1:6379/10 \
        .venv/bin/python bench/crowd_study.py [--debates 300] [--dropouts 30] [--concurrency 330] [--processes 2]

Starts the production processes (platform/serve.py with N daphne processes behind one port, a
Celery worker), starts the bots' study (tests/data/bot-study.yaml: consent, quiz, practice, direct
judging, survey, bonus; a judge timeout of `--judge-timeout` seconds, 60 by default) with
`--debates` debates, and runs `manage.py
run_bots` with one bot per debate plus one per dropout, all at once by default: each bot enters by
its Prolific link, goes through every page, waits on its own websocket (/ws/me/), judges over the
debate's websocket and leaves with its completion code, and `--dropouts` of them close their
debate once seated. It prints the bots' figures (time to seat, to re-fill a dropped seat, to finish
all), the checks (every debate judged exactly once, nobody twice) and the server's CPU by part over
the run (2.0 = both cores). The bots run in this process, on the same machine.
"""

import argparse
import io
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prepare_study(debates: int, judge_timeout: int) -> int:
    """The bots' study with `debates` questions and the given judge timeout, started; returns the
    experiment's id."""
    from django.contrib.auth.models import User

    from debates.experiments import load_experiment, start_experiment
    from tests.factories import dataset_questions

    owner = User.objects.create_user(f"crowd-bench-{time.time_ns()}")
    source = f"bot-study-{time.time_ns()}"
    definition = (
        (ROOT / "tests" / "data" / "bot-study.yaml")
        .read_text()
        .replace("source: bot-study", f"source: {source}")
        .replace("judge_timeout_seconds: 10", f"judge_timeout_seconds: {judge_timeout}")
    )
    dataset_questions(
        source, debates, correct_index=lambda i: i % 2, hidden_material="", public_material="Read carefully."
    )
    version, _ = load_experiment(definition, owner)
    start_experiment(version.pk)
    return version.experiment_id


def checks(experiment_id: int) -> dict:
    from debates.models import Debate, Participant
    from judging.models import Verdict

    debates = Debate.objects.filter(experiment_version__experiment_id=experiment_id)
    verdicts = Verdict.objects.filter(debate__in=debates)
    judges = Participant.objects.filter(debate__in=debates, seat="judge")
    return {
        "debates": debates.count(),
        "debates_complete": debates.filter(status="complete").count(),
        "verdicts": verdicts.count(),
        "debates_judged_once": verdicts.values("debate").distinct().count(),
        "judges_seated_twice": judges.count() - judges.values("user").distinct().count(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--debates", type=int, default=300)
    parser.add_argument("--dropouts", type=int, default=30)
    parser.add_argument("--concurrency", type=int, help="bots at once (default: all of them)")
    parser.add_argument("--processes", type=int, default=2, help="daphne processes")
    parser.add_argument(
        "--judge-timeout", type=int, default=60, help="seconds a seated judge may stay away before the seat is freed"
    )
    args = parser.parse_args()
    from bench.live_load import cpu_seconds, cpu_used, service_pids, set_up_django, start_production, stop

    set_up_django()
    from django.core.management import CommandError, call_command

    bots = args.debates + args.dropouts
    base, web, worker = start_production(args.processes)
    try:
        experiment_id = prepare_study(args.debates, args.judge_timeout)
        parts = service_pids(web, worker)
        before, started = {k: cpu_seconds(v) for k, v in parts.items()}, time.monotonic()
        printed, failed = io.StringIO(), ""
        try:
            call_command(
                "run_bots",
                str(experiment_id),
                judges=bots,
                dropouts=args.dropouts,
                url=base,
                concurrency=args.concurrency or bots,
                timeout=900,
                prefix=f"B{time.time_ns() % 10**9}-",
                bonus_file=ROOT / "var" / "crowd-bench-bonus.csv",
                stdout=printed,
            )
        except CommandError as error:  # some bots failed: the figures still say how the rest did
            failed = str(error)
        wall = time.monotonic() - started
        after = service_pids(web, worker)
        cpu = {k: round(cpu_used(before[k], cpu_seconds(after[k])) / wall, 2) for k in parts}
    finally:
        stop(web, worker)
    print(
        f"crowd study: {args.debates} debates, {bots} bots ({args.dropouts} drop out), {args.processes} web processes"
    )
    print(printed.getvalue().rstrip())
    for key, value in checks(experiment_id).items():
        print(f"{key}: {value}")
    print(f"server_cpu_cores: {round(sum(cpu.values()), 2)} {cpu}")
    if failed:
        sys.exit(failed)


if __name__ == "__main__":
    main()
