"""Reproduce Table 2 of Irving et al. (2018) by self-play; every game is stored as a debate.

    manage.py pixel_selfplay --sample 200 --rollouts 300             # local processes (no REDIS_URL)
    manage.py pixel_selfplay --images 100 --workers 2
    REDIS_URL=... manage.py pixel_selfplay --sample 10000 --rollouts 10000 --device cuda   # Celery workers

Stopping (Ctrl-C) and running the same command again continues where it stopped.
"""

import concurrent.futures
import multiprocessing
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from debates import pixel_debates
from debates.pixel.mcts import LEAF_MODES, VALUE_MODES
from debates.pixel.selfplay import AGGREGATION_RULES, ORDERS
from judging import pixel_selfplay as selfplay
from judging import pixel_workers

POLL_SECONDS = 1.0


class StopRun(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Self-play of the MNIST pixel debate: the whole Table 2 (4 and 6 pixels, both move orders, precommit "
        "and no precommit, 9 lies x N seeds), each game stored as a debate with the pixel judge's verdict. "
        "Resumable; fans out to Celery workers when REDIS_URL is set."
    )

    def add_arguments(self, parser):
        chosen = parser.add_mutually_exclusive_group(required=True)
        chosen.add_argument("--images", type=int, help="the first N test images")
        chosen.add_argument("--sample", type=int, help="a seeded random sample of N test images")
        parser.add_argument("--sample-seed", type=int, default=0)
        parser.add_argument("--run", default="table2", help="run name; the same name continues a stopped run")
        parser.add_argument("--pixels", type=int, nargs="+", choices=pixel_debates.JUDGE_PIXELS, default=[6, 4])
        parser.add_argument(
            "--variants", nargs="+", choices=["precommit", "no-precommit"], default=["precommit", "no-precommit"]
        )
        parser.add_argument(
            "--orders", nargs="+", choices=ORDERS, default=list(ORDERS), help="who moves first (both by default)"
        )
        parser.add_argument("--seeds", type=int, default=3, help="games per lie and move order (paper: 3)")
        parser.add_argument("--rollouts", type=int, default=1000, help="rollouts per move (paper: 10000)")
        parser.add_argument(
            "--leaf-value",
            choices=LEAF_MODES,
            default="judge",
            help="judge a leaf's partial mask, or play out at random and judge the end",
        )
        parser.add_argument("--value", choices=VALUE_MODES, default="win", help="+-1 verdicts or logit margins")
        parser.add_argument("--leaves-per-batch", type=int, default=1, help="leaves per judge call within a game")
        parser.add_argument(
            "--aggregation",
            choices=AGGREGATION_RULES,
            default="majority",
            help="how a lie's games over the seeds are combined",
        )
        parser.add_argument("--device", choices=selfplay.DEVICES, default="cpu")
        parser.add_argument(
            "--mode",
            choices=["auto", "local", "celery"],
            default="auto",
            help="auto: Celery tasks when REDIS_URL is set, else local processes",
        )
        parser.add_argument("--workers", type=int, default=1, help="local processes (local mode)")
        parser.add_argument(
            "--images-per-task",
            type=int,
            default=selfplay.IMAGES_PER_TASK,
            help="images whose games one process or Celery task plays in lockstep",
        )
        parser.add_argument("--max-games", type=int, help="stop after storing this many new games (local, 1 worker)")
        parser.add_argument(
            "--judge-images", type=int, default=10000, help="test images for the judge-alone accuracy (0: skip)"
        )
        parser.add_argument("--table-only", action="store_true", help="print the table of the stored games only")
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, **options):
        run = self.make_run(options)
        try:
            selfplay.check_run(run)
        except selfplay.RunMismatch as error:
            raise CommandError(str(error)) from None
        mode = options["mode"]
        if mode == "auto":
            mode = "local" if settings.RUN_TASKS_IN_PROCESS else "celery"
        if mode == "celery" and settings.RUN_TASKS_IN_PROCESS:
            raise CommandError("--mode celery needs REDIS_URL (a broker and workers)")
        if options["max_games"] is not None and (mode != "local" or options["workers"] != 1):
            raise CommandError("--max-games works in local mode with one worker")
        if not options["table_only"]:
            for pixels in run.pixels:
                self.require_judge(pixels)
            self.stdout.write(
                f"run {run.name!r}: {len(run.image_indices)} images, {run.total_games()} games, {mode} mode"
            )
            try:
                if mode == "celery":
                    self.play_with_celery(run, options)
                elif options["workers"] > 1:
                    self.play_in_processes(run, options)
                else:
                    self.play_here(run, options)
            except (KeyboardInterrupt, StopRun) as stop:
                stored = selfplay.run_debates(run.name).count()
                why = "interrupted" if isinstance(stop, KeyboardInterrupt) else "stopped at --max-games"
                self.stdout.write(
                    f"\n{why}: {stored} of {run.total_games()} games stored. Run the same command again to continue."
                )
                if isinstance(stop, KeyboardInterrupt):
                    return
        self.print_table(run, options)

    def make_run(self, options) -> selfplay.SelfPlayRun:
        try:
            images, selection = selfplay.image_selection(options["images"], options["sample"], options["sample_seed"])
            return selfplay.SelfPlayRun(
                name=options["run"],
                image_indices=tuple(images),
                pixels=tuple(options["pixels"]),
                precommit=tuple(v == "precommit" for v in options["variants"]),
                orders=tuple(options["orders"]),
                seeds=options["seeds"],
                rollouts=options["rollouts"],
                leaf=options["leaf_value"],
                value=options["value"],
                leaves_per_batch=options["leaves_per_batch"],
                device=options["device"],
                selection=selection,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

    def require_judge(self, pixels: int) -> None:
        try:
            pixel_debates.judge_file(pixels)
        except pixel_debates.JudgeMissing as error:
            raise CommandError(str(error)) from None

    def progress(self, run, options):
        return tqdm(
            total=run.total_games(),
            initial=selfplay.run_debates(run.name).count(),
            unit="game",
            desc=f"self-play {run.name}",
            disable=options["no_progress"],
            file=self.stderr._out,
        )

    def pending_groups(self, run, options) -> list[list[tuple[int, int, bool]]]:
        complete = selfplay.complete_units(run, selfplay.stored_results(run.name))
        pending = [unit for unit in run.units() if unit not in complete]
        try:
            return selfplay.task_groups(pending, options["images_per_task"])
        except ValueError as error:
            raise CommandError(str(error)) from None

    def play_here(self, run, options) -> None:
        budget = options["max_games"]
        with self.progress(run, options) as bar:
            stored = 0
            for group in self.pending_groups(run, options):
                stored += selfplay.run_units(
                    run, group, on_stored=bar.update, max_new=None if budget is None else budget - stored
                )
                if budget is not None and stored >= budget:
                    raise StopRun()

    def play_in_processes(self, run, options) -> None:
        from django.db import connection

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(
            options["workers"],
            mp_context=context,
            initializer=pixel_workers.init_worker_process,
            initargs=(connection.settings_dict["NAME"],),
        ) as pool:
            futures = [
                pool.submit(pixel_workers.run_units, run.to_dict(), group)
                for group in self.pending_groups(run, options)
            ]
            try:
                self.wait(run, options, lambda: [f.done() for f in futures], lambda: [_error(f) for f in futures])
            except KeyboardInterrupt:
                for future in futures:
                    future.cancel()
                raise

    def play_with_celery(self, run, options) -> None:
        from judging.tasks import pixel_selfplay_units

        results = [pixel_selfplay_units.delay(run.to_dict(), group) for group in self.pending_groups(run, options)]
        self.stdout.write(
            f"{len(results)} task{'' if len(results) == 1 else 's'} queued (up to "
            f"{options['images_per_task']} images each); waiting for the workers"
        )
        self.wait(
            run,
            options,
            lambda: [r.ready() for r in results],
            lambda: [r.result if r.ready() and r.failed() else None for r in results],
        )

    def wait(self, run, options, done, errors) -> None:
        with self.progress(run, options) as bar:
            while True:
                finished = done()
                bar.n = selfplay.run_debates(run.name).count()
                bar.refresh()
                if all(finished):
                    break
                time.sleep(POLL_SECONDS)
        failures = [e for e in errors() if e is not None]
        for error in failures[:5]:
            self.stderr.write(f"a unit failed: {error!r}")
        if failures:
            raise CommandError(f"{len(failures)} units failed; run the same command again to retry them")

    def print_table(self, run, options) -> None:
        accuracy = None
        if options["judge_images"]:
            count = min(options["judge_images"], len(pixel_debates.mnist_test_set()[1]))
            accuracy = {}
            for pixels in run.pixels:
                try:
                    accuracy[pixels] = selfplay.judge_alone(pixels, range(count), device=run.device)
                except pixel_debates.JudgeMissing:
                    continue
            self.stdout.write(f"judge alone: random nonzero masks on the first {count} test images (mask seed 0)")
            for pixels in run.pixels:
                recorded = _recorded_accuracy(pixels)
                if recorded:
                    self.stdout.write(
                        f"  recorded for the shipped {pixels}-pixel judge: {recorded['accuracy_mean']:.1%} "
                        f"over {recorded['images']} images x {len(recorded['mask_seeds'])} mask seeds"
                    )
        self.stdout.write(selfplay.format_run_table(run, options["aggregation"], accuracy))
        other = next(rule for rule in AGGREGATION_RULES if rule != options["aggregation"])
        rows, _ = selfplay.table(run, other)
        means = [
            f"{r['pixels']} px {'precommit' if r['precommit'] else 'no precommit'} {r['rate']:.1%}"
            for r in rows
            if r["first"] == "mean"
        ]
        if means:
            self.stdout.write(f"means with the {other} rule instead: " + "; ".join(means))


def _recorded_accuracy(pixels: int) -> dict | None:
    try:
        return (pixel_debates.judge_identity(pixels).get("metadata") or {}).get("test_accuracy_random_nonzero_masks")
    except pixel_debates.JudgeMissing:
        return None


def _error(future):
    if not future.done() or future.cancelled():
        return None
    return future.exception()
