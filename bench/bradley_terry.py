"""Time Bradley-Terry ratings with bootstrap intervals on synthetic debates.

    .venv/bin/python bench/bradley_terry.py [--debates 3000] [--debaters 20] [--boot 1000] [--repeat 3]

Debaters get true strengths drawn from N(0, 1); each debate pits two different debaters, and the
first wins with the Bradley-Terry probability. Prints the time of the point fit, of the bootstrap
fits, and how well the ratings recover the true strengths.
"""

import argparse
from pathlib import Path
import sys
import time

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from judging.stats import bradley_terry  # noqa: E402


def synthetic_debates(debates: int, debaters: int, seed: int):
    rng = np.random.default_rng(seed)
    strength = rng.normal(0, 1, debaters)
    first = rng.integers(0, debaters, debates)
    second = (first + rng.integers(1, debaters, debates)) % debaters
    first_wins = rng.random(debates) < 1 / (1 + np.exp(strength[second] - strength[first]))
    winners = [f"debater-{i}" for i in np.where(first_wins, first, second)]
    losers = [f"debater-{i}" for i in np.where(first_wins, second, first)]
    return winners, losers, {f"debater-{i}": s for i, s in enumerate(strength)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--debates", type=int, default=3000)
    parser.add_argument("--debaters", type=int, default=20)
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best and median are printed")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    winners, losers, strength = synthetic_debates(args.debates, args.debaters, args.seed)
    point_times, total_times = [], []
    for run in range(args.repeat):
        start = time.perf_counter()
        bradley_terry(winners, losers, n_boot=0)
        point_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        result = bradley_terry(winners, losers, n_boot=args.boot, seed=run)
        total_times.append(time.perf_counter() - start)

    true = np.array([strength[p] for p in result.players])
    true -= true.mean()
    covered = np.mean((result.low <= true) & (true <= result.high))
    print(
        f"Bradley-Terry: {args.debates} debates among {args.debaters} debaters, "
        f"{len(set(zip(winners, losers)))} distinct (winner, loser) pairings"
    )
    print(
        f"  point fit:                   best {min(point_times) * 1000:8.1f} ms, "
        f"median {np.median(point_times) * 1000:8.1f} ms"
    )
    print(
        f"  point fit + {args.boot} bootstrap fits: best {min(total_times):8.3f} s,  "
        f"median {np.median(total_times):8.3f} s  ({args.repeat} runs)"
    )
    print(
        f"  correlation with true strengths: {np.corrcoef(result.ratings, true)[0, 1]:.3f}; "
        f"true strength inside its 95% interval for {covered:.0%} of debaters"
    )


if __name__ == "__main__":
    main()
