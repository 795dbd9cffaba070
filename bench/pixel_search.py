"""Speed of the pixel-debate tree search, side by side in one run, and what the paper's scale would cost.

    .venv/bin/python bench/pixel_search.py [--device cuda] [--paper-rollouts] [--threads N] ...

Measures, on the same judge and the same games:
1. judge evaluations per second, one position per call vs batches of 256, for the plain forward
   pass and the sparse one (evaluator.SparseJudge);
2. rollouts per second of the plain search (one leaf per judge call, no cache) vs the batched,
   cached search: exact (games in lockstep, batched across games, decisions identical to the plain
   search) and with virtual loss (also batched within each game); seconds per game at 1,000
   rollouts (and 10,000 with --paper-rollouts);
3. honest win rates of the three on a fixed sample, with 95% Wilson intervals (speed must not
   weaken the debaters), and how many games the exact search played move for move like the plain one;
4. the time the full Table 2 would take at the paper's scale on this machine and per worker;
5. with --compare-options, the sample's win rates under each choice the paper leaves open
   (leaf value, value scale, tree reuse).

Rates are given per wall second (what this run got) and per CPU second of this process (what a
dedicated core, i.e. one worker, would do when other processes share the cores); speed-ups and the
extrapolation use CPU seconds. The workload is the experiment's own: all the Table 2 games of the
first test images (9 lies with precommit, no-precommit games, both move orders), so the judge cache
is shared the way a real run shares it. The plain search plays only the first --plain-games of
them (it is slow); rates are per rollout. The default run takes about 2.5 CPU minutes.
"""

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from debates.pixel import mnist  # noqa: E402
from debates.pixel.evaluator import JudgeEvaluator  # noqa: E402
from debates.pixel.judge_net import PixelJudge  # noqa: E402
from debates.pixel.judges import load_judge, weights_path  # noqa: E402
from debates.pixel.mcts import DriverStats, SearchConfig, play_moves, run_plain  # noqa: E402
from debates.pixel.selfplay import play_games, random_nonzero_masks, table2_games  # noqa: E402
from debates.proportions import wilson_interval  # noqa: E402
from debates.pixel.game import batch_judge_planes  # noqa: E402

PAPER_IMAGES, PAPER_LIES, PAPER_SEEDS, PAPER_ORDERS, PAPER_ROLLOUTS = 10_000, 9, 3, 2, 10_000


def load_model(args) -> tuple[PixelJudge, str]:
    if args.judge:
        model = PixelJudge()
        model.load_state_dict(torch.load(args.judge, map_location="cpu", weights_only=False)["model"])
        return model, f"checkpoint {args.judge}"
    if weights_path(args.pixels).exists():
        return load_judge(args.pixels), f"shipped {weights_path(args.pixels).name}"
    checkpoint = Path("var/data/pixel-training") / f"judge-{args.pixels}px-seed0.ckpt"
    if checkpoint.exists():
        saved = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model = PixelJudge()
        model.load_state_dict(saved["model"])
        return model, f"training checkpoint {checkpoint} (step {saved['step']}, read only)"
    torch.manual_seed(0)
    return PixelJudge(), "UNTRAINED network (seed 0): no trained judge found"


class Elapsed:
    """Wall time and this process's CPU time since creation. Other processes share the cores, so
    work per CPU second is what a dedicated core (one worker) would do; wall time is what we got."""

    def __init__(self):
        self.wall_start, self.cpu_start = time.perf_counter(), time.process_time()

    def stop(self) -> "Elapsed":
        self.wall = time.perf_counter() - self.wall_start
        self.cpu = time.process_time() - self.cpu_start
        return self


def judge_rates(evaluator, planes, batch, seconds) -> tuple[float, float]:
    """Evaluations per wall second and per CPU second."""
    evaluator(planes[:batch])
    done, elapsed = 0, Elapsed()
    while time.perf_counter() - elapsed.wall_start < seconds:
        start = done % (len(planes) - batch + 1)
        evaluator(planes[start : start + batch])
        done += batch
    elapsed.stop()
    return done / elapsed.wall, done / elapsed.cpu


def play_plain(games, evaluator, config):
    results, stats, elapsed = [], DriverStats(), Elapsed()
    for game in games:
        results.append(run_plain(play_moves(game.setup, config, game.seed), game.setup.image, evaluator, stats))
    return results, stats, elapsed.stop()


def play_batched(games, evaluator, config, max_active=256):
    stats, elapsed = DriverStats(), Elapsed()
    finished = {
        id(game): result for game, result in play_games(games, evaluator, config, max_active=max_active, stats=stats)
    }
    return [finished[id(game)] for game in games], stats, elapsed.stop()


SEARCH_HEADER = (
    f"{'search':<40} {'games':>5} {'rollouts/s':>10} {'per CPU-s':>9} {'speed-up':>8} {'s/game':>6} "
    f"{'CPU-s/game':>10} {'judged':>8} {'cache hits':>10} {'mean batch':>10} {'judge time':>10}"
)


def search_row(name, games, rollouts, elapsed, stats, plain) -> str:
    """One line of the speed table; the speed-up is per CPU second against `plain` (same unit)."""
    return (
        f"{name:<40} {games:>5} {rollouts / elapsed.wall:>10,.0f} {rollouts / elapsed.cpu:>9,.0f} "
        f"{rollouts / elapsed.cpu / plain:>7.1f}x {elapsed.wall / games:>6.1f} {elapsed.cpu / games:>10.1f} "
        f"{stats.evaluations:>8,} {stats.cache_hit_rate:>10.0%} "
        f"{stats.evaluations / max(stats.judge_calls, 1):>10.1f} {stats.judge_seconds / elapsed.wall:>10.0%}"
    )


def rollouts_of(games, config) -> int:
    return sum(config.rollouts * game.setup.pixels for game in games)


def honest_wins(games, results) -> int:
    return sum(game.setup.honest_wins(result["logits"]) for game, result in zip(games, results))


def paper_games(pixels_budgets=(6, 4)) -> dict[int, int]:
    # precommit: 9 lies x 3 seeds x 2 orders; no precommit (no lie to play): 3 seeds x 2 orders
    per_image = PAPER_LIES * PAPER_SEEDS * PAPER_ORDERS + PAPER_SEEDS * PAPER_ORDERS
    return {pixels: PAPER_IMAGES * per_image for pixels in pixels_budgets}


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    if seconds < 3 * 365 * 86400:
        return f"{seconds / 86400:.0f} days"
    return f"{seconds / (365 * 86400):.1f} years"


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: one worker per core)")
    parser.add_argument("--pixels", type=int, choices=[4, 6], default=6)
    parser.add_argument("--judge", type=Path, help="a training checkpoint to use instead of the shipped judge")
    parser.add_argument("--rollouts", type=int, default=1000, help="rollouts per move for the speed runs")
    parser.add_argument("--images", type=int, default=1, help="test images whose Table 2 games are the speed workload")
    parser.add_argument("--plain-games", type=int, default=2, help="how many of those games the plain search plays")
    parser.add_argument("--leaves", type=int, default=16, help="leaves per judge call with virtual loss")
    parser.add_argument("--sample-images", type=int, default=20, help="test images of the win-rate sample")
    parser.add_argument("--sample-rollouts", type=int, default=100, help="rollouts per move in the win-rate sample")
    parser.add_argument("--paper-rollouts", action="store_true", help="also time games at 10,000 rollouts per move")
    parser.add_argument(
        "--compare-options",
        action="store_true",
        help="also play the sample with each alternative the paper leaves open",
    )
    parser.add_argument("--judge-seconds", type=float, default=3.0)
    parser.add_argument(
        "--lockstep",
        type=int,
        nargs="+",
        default=[1, 20, 80, 160],
        help="numbers of games played in lockstep for the lockstep section (64+ is the point)",
    )
    parser.add_argument(
        "--gpu-evals-per-second",
        type=float,
        help="judge evaluations per second of a GPU measured elsewhere (bench/pixel_search.py "
        "--device cuda prints it), for the projection of a GPU machine",
    )
    parser.add_argument("--gpu-machine-cores", type=int, default=16, help="CPU cores of that GPU machine")
    return parser.parse_args(argv)


def judge_section(dense, sparse, images, pixels, seconds) -> None:
    masks = random_nonzero_masks(images[:512], pixels, seed=0)
    masks = [mask[: 1 + i % pixels] for i, mask in enumerate(masks)]  # positions of every size, as in a search
    planes = np.concatenate([batch_judge_planes(image, [mask]) for image, mask in zip(images[:512], masks)])
    single = judge_rates(dense, planes, 1, seconds)
    print(f"\n1. judge evaluations/s (positions of 1 to {pixels} revealed pixels)")
    print(f"{'network pass':<40} {'batch':>5} {'evals/s':>10} {'per CPU-s':>9} {'vs one at a time (CPU)':>22}")
    for name, evaluator, batch in (
        ("plain", dense, 1),
        ("plain", dense, 256),
        ("sparse", sparse, 1),
        ("sparse", sparse, 64),
        ("sparse", sparse, 256),
    ):
        wall, cpu = single if batch == 1 and evaluator is dense else judge_rates(evaluator, planes, batch, seconds)
        print(f"{name:<40} {batch:>5} {wall:>10,.0f} {cpu:>9,.0f} {cpu / single[1]:>21.1f}x")


def speed_section(args, dense, sparse, images, labels) -> dict[str, float]:
    """Rollouts per CPU second of each search on the Table 2 games of the first test images."""
    exact = SearchConfig(rollouts=args.rollouts)
    virtual = replace(exact, leaves_per_batch=args.leaves)
    workload = table2_games(images[: args.images], labels[: args.images], pixels=args.pixels, seeds=1)
    plain_subset = workload[: args.plain_games]
    print(
        f"\n2. search speed at {args.rollouts:,} rollouts per move, {args.pixels} px; workload: the Table 2 games of "
        f"{args.images} test image(s), {len(workload)} games, 1 seed (the plain search plays the first "
        f"{len(plain_subset)})"
    )
    print(SEARCH_HEADER)
    _, stats, elapsed = play_plain(plain_subset, dense, exact)
    plain_rate = rollouts_of(plain_subset, exact) / elapsed.cpu
    print(
        search_row(
            "plain (1 leaf per call, no cache)",
            len(plain_subset),
            rollouts_of(plain_subset, exact),
            elapsed,
            stats,
            plain_rate,
        )
    )
    rates = {"plain": plain_rate}
    runs = [
        ("batched + cached, exact, plain pass", workload, exact, dense),
        ("batched + cached, exact, sparse pass", workload, exact, sparse),
        (f"+ virtual loss x{args.leaves}, sparse pass", workload, virtual, sparse),
        (f"one game alone, virtual loss x{args.leaves}, sparse", workload[:1], virtual, sparse),
    ]
    if args.paper_rollouts:
        runs.append(("exact, sparse, at 10,000 rollouts", workload, SearchConfig(rollouts=PAPER_ROLLOUTS), sparse))
    for name, games, config, evaluator in runs:
        _, stats, elapsed = play_batched(games, evaluator, config)
        rates[name] = rollouts_of(games, config) / elapsed.cpu
        print(search_row(name, len(games), rollouts_of(games, config), elapsed, stats, plain_rate))
    return rates


def lockstep_section(args, evaluator, images, labels) -> dict:
    """The exact search with 1 game alone and with many games in lockstep: each judge call then
    evaluates the new positions of every running game at once. Returns the widest run's figures."""
    config = SearchConfig(rollouts=args.rollouts)
    per_image = len(table2_games(images[:1], labels[:1], pixels=args.pixels, seeds=1))
    print(
        f"\n2b. games in lockstep: exact search, {evaluator_name(evaluator)} pass, "
        f"{args.rollouts:,} rollouts per move, {args.pixels} px; "
        f"the Table 2 games of the first test images ({per_image} per image), all running at once"
    )
    print(
        f"{'games':>6} {'rollouts/s':>10} {'per CPU-s':>9} {'vs 1 game':>9} {'mean batch':>10} {'judge CPU':>9} "
        f"{'tree: rollouts per CPU-s':>24} {'evals per rollout':>17} {'judge calls per 1,000 rollouts':>30}"
    )
    single, widest = None, {}
    for width in args.lockstep:
        count = -(-width // per_image)
        workload = table2_games(images[:count], labels[:count], pixels=args.pixels, seeds=1)[:width]
        _, stats, elapsed = play_batched(workload, evaluator, config, max_active=width)
        rollouts = rollouts_of(workload, config)
        rate = rollouts / elapsed.cpu
        single = single or rate
        widest = {
            "games": width,
            "rate": rate,
            "tree_rate": rollouts / max(elapsed.cpu - stats.judge_cpu_seconds, 1e-9),
            "evals_per_rollout": stats.evaluations / rollouts,
        }
        print(
            f"{width:>6} {rollouts / elapsed.wall:>10,.0f} {rate:>9,.0f} {rate / single:>8.1f}x "
            f"{stats.evaluations / max(stats.judge_calls, 1):>10.1f} {stats.judge_cpu_seconds / elapsed.cpu:>9.0%} "
            f"{widest['tree_rate']:>24,.0f} {widest['evals_per_rollout']:>17.3f} "
            f"{1000 * stats.judge_calls / rollouts:>30.1f}"
        )
    return widest


def evaluator_name(evaluator) -> str:
    return "sparse" if evaluator.sparse else "plain"


def gpu_projection_section(args, lockstep: dict, gpu_rate: float | None) -> None:
    """One GPU machine: one search process per core, each playing many games in lockstep and sending its
    batches to the shared GPU. The tree work is per core; the judge work is the GPU's."""
    total_rollouts = sum(count * pixels * PAPER_ROLLOUTS for pixels, count in paper_games().items())
    cores = args.gpu_machine_cores
    tree_seconds = total_rollouts / lockstep["tree_rate"] / cores
    print(
        f"\n4b. the full table on one GPU machine with {cores} cores, {cores} search processes each playing "
        f"{lockstep['games']} games in lockstep (tree work as measured here per core: "
        f"{lockstep['tree_rate']:,.0f} rollouts per CPU-s)"
    )
    print(f"tree work alone: {duration(tree_seconds)}")
    if gpu_rate is None:
        print("judge work: no GPU rate (run with --device cuda, or pass --gpu-evals-per-second)")
        return
    judge_seconds = total_rollouts * lockstep["evals_per_rollout"] / gpu_rate
    print(
        f"judge work: {lockstep['evals_per_rollout']:.3f} evaluations per rollout at {gpu_rate:,.0f} per GPU-s: "
        f"{duration(judge_seconds)}"
    )
    print(
        f"projected (the two overlap; the slower one sets the pace): {duration(max(tree_seconds, judge_seconds))}, "
        "if the processes' judge calls do not queue behind each other on the GPU (fewer, larger calls help)"
    )


def win_rate_line(name, games, results, elapsed) -> str:
    wins = honest_wins(games, results)
    low, high = wilson_interval(wins, len(games))
    return (
        f"{name:<56} {wins / len(games):>6.1%}  ({wins}/{len(games)}, 95% {low:.1%}-{high:.1%})  "
        f"{elapsed.wall:.0f} s ({elapsed.cpu:.0f} CPU-s)"
    )


def sample_section(args, dense, sparse, sample) -> None:
    exact = SearchConfig(rollouts=args.sample_rollouts)
    virtual = replace(exact, leaves_per_batch=args.leaves)
    print(
        f"\n3. honest win rate on a fixed sample: {len(sample)} precommit games "
        f"(test images 0-{args.sample_images - 1}, both orders, one lie each), {args.sample_rollouts} rollouts per move"
    )
    plain_results, _, plain_elapsed = play_plain(sample, dense, exact)
    exact_results, _, exact_elapsed = play_batched(sample, sparse, exact)
    virtual_results, _, virtual_elapsed = play_batched(sample, sparse, virtual)
    print(win_rate_line("plain", sample, plain_results, plain_elapsed))
    print(win_rate_line("batched + cached, exact, sparse pass", sample, exact_results, exact_elapsed))
    print(win_rate_line(f"+ virtual loss x{args.leaves}", sample, virtual_results, virtual_elapsed))
    same = sum(p["moves"] == [m["pixel"] for m in e["moves"]] for p, e in zip(plain_results, exact_results))
    print(
        f"exact search: {same}/{len(sample)} games move for move identical to the plain search "
        f"(the sparse pass differs from the plain one by float rounding only)"
    )


def extrapolation_section(args, rates) -> None:
    print(
        f"\n4. the full Table 2 at the paper's scale ({PAPER_IMAGES:,} images; "
        f"precommit 9 lies x {PAPER_SEEDS} seeds x {PAPER_ORDERS} orders, "
        f"no precommit {PAPER_SEEDS} seeds x {PAPER_ORDERS} orders; {PAPER_ROLLOUTS:,} rollouts per move)"
    )
    basis = f"rollouts per CPU-s at {args.rollouts:,} rollouts"
    # The faster network pass on this device: sparse on a CPU, plain on a GPU.
    faster_pass = max(("plain pass", "sparse pass"), key=lambda name: rates[f"batched + cached, exact, {name}"])
    measured = [
        ("plain", rates["plain"], basis),
        (f"batched + cached, exact, {faster_pass}", rates[f"batched + cached, exact, {faster_pass}"], basis),
    ]
    if "exact, sparse, at 10,000 rollouts" in rates:
        measured.append(
            (
                "batched + cached, exact, sparse",
                rates["exact, sparse, at 10,000 rollouts"],
                "rollouts per CPU-s at 10,000 rollouts",
            )
        )
    games = paper_games()
    total_rollouts = sum(count * pixels * PAPER_ROLLOUTS for pixels, count in games.items())
    print(f"games: {games[6]:,} at 6 px + {games[4]:,} at 4 px; rollouts {total_rollouts:.2e}")
    workers = max(1, os.cpu_count() // args.threads) if args.device == "cpu" else 1
    for name, rate, basis in measured:
        one_worker = total_rollouts / rate
        print(
            f"{name:<32} ({basis}): one worker ({args.threads} thread{'s' if args.threads > 1 else ''}) "
            f"{duration(one_worker)}; this machine ({workers} workers) {duration(one_worker / workers)}; "
            f"workers to finish in a week {one_worker / (7 * 86400):,.0f}"
        )


def options_section(args, sparse, sample) -> None:
    exact = SearchConfig(rollouts=args.sample_rollouts)
    print(
        f"\n5. the choices the paper leaves open, on the same sample (exact search, sparse pass, "
        f"{args.sample_rollouts} rollouts per move)"
    )
    for name, config in (
        ("leaf: judge the partial mask, value: win/loss (default)", exact),
        ("leaf: random playout to the end", replace(exact, leaf="playout")),
        ("value: logit margin", replace(exact, value="margin")),
        ("no tree reuse between moves", replace(exact, reuse_tree=False)),
    ):
        results, _, elapsed = play_batched(sample, sparse, config)
        print(win_rate_line(name, sample, results, elapsed))


def main(argv=None) -> None:
    args = parse_arguments(argv)
    torch.set_num_threads(args.threads)
    model, judge_name = load_model(args)
    dense = JudgeEvaluator(model, device=args.device)
    sparse = JudgeEvaluator(model, device=args.device, sparse=True)
    images, labels = mnist.load("test", mnist.fetch())
    print(
        f"judge: {judge_name}; device {args.device}, {args.threads} torch thread(s); {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    judge_section(dense, sparse, images, args.pixels, args.judge_seconds)
    rates = speed_section(args, dense, sparse, images, labels)
    # On a CPU the sparse pass is the faster one; on a GPU the plain pass in big batches.
    lockstep = lockstep_section(args, sparse if args.device == "cpu" else dense, images, labels)
    sample = table2_games(
        images[: args.sample_images], labels[: args.sample_images], pixels=args.pixels, seeds=1, precommit=[True]
    )[::9]  # one game per image and order, the lie varies
    sample_section(args, dense, sparse, sample)
    extrapolation_section(args, rates)
    gpu_rate = args.gpu_evals_per_second
    if args.device == "cuda":
        masks = random_nonzero_masks(images[:1024], args.pixels, seed=0)
        planes = np.concatenate([batch_judge_planes(image, [mask]) for image, mask in zip(images[:1024], masks)])
        gpu_rate = judge_rates(dense, planes, 1024, args.judge_seconds)[0]
    gpu_projection_section(args, lockstep, gpu_rate)
    if args.compare_options:
        options_section(args, sparse, sample)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other processes share these cores)")


if __name__ == "__main__":
    main()
