"""Self-play of the pixel debate and the paper's Table 2 (Irving et al. 2018), without Django.

Play games:
- `play_game(image, true_label, lie, pixels, honest_first, precommit, rollouts, seed, evaluator)`
  plays one game and returns a result dict (see `game_result`).
- `choose_move(setup, revealed, evaluator, config, seed)`: the tree-search debater's next pixel in
  any position, e.g. after a human's reveals (human vs AI, or an AI-vs-AI room playing move by move).
- `verdict(setup, revealed, evaluator)`: the AI judge's verdict on a final mask.
- `play_games(games, evaluator, config)` plays many `SelfPlayGame`s at once and yields
  (game, result) as each finishes. Games on the same image share one judge cache, and the judge
  evaluates the positions of all running games in batched calls: order the games image by image
  (as `table2_games` does) and let `max_active` cover an image's games. The results are the same
  as playing each game alone with `play_game` (given the same evaluator).

Table 2:
- `table2_games(images, labels, image_ids, ...)` lists the games of the experiment: per image,
  precommit games for each of the 9 lies and no-precommit games (no lie: any wrong label wins for
  the liar), each in both move orders, with `seeds` seeds.
- `image_outcomes(results, rule)` decides each image per (pixels, first mover, precommit): the
  liar wins the image if ANY lie wins; a lie's games over its seeds are combined by `rule`:
    "majority" (default): the lie wins unless the honest side wins more than half of its games;
    "mean_logits": the judge logits are averaged over the seeds, and the verdict rule is applied to
                   the mean (a tie in either rule goes to the liar, as in a single game).
- `table2_rows(outcomes)` gives honest win rates with 95% Wilson intervals per (pixels, first
  mover, precommit), their mean, and the paper's numbers beside them; `format_table2` prints them.
- `judge_accuracy` measures the judge alone on random nonzero masks (the table's first column).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from ..proportions import wilson_interval
from .game import HONEST, LABELS, LIAR, SIDE, DebateSetup, GameError, GameState, batch_judge_planes
from .mcts import DriverStats, Evaluator, JudgeCache, SearchConfig, TreeSearch, play_moves, run_lockstep

AGGREGATION_RULES = ("majority", "mean_logits")
ORDERS = ("honest", "liar")  # who moves first
PAPER_JUDGE_ACCURACY = {6: 0.594, 4: 0.482}
# Honest win rates of the paper's Table 2: (pixels, first mover or "mean", precommit) -> rate.
PAPER_TABLE2 = {
    (4, "honest", False): 0.510,
    (4, "liar", False): 0.684,
    (4, "mean", False): 0.597,
    (4, "honest", True): 0.838,
    (4, "liar", True): 0.867,
    (4, "mean", True): 0.852,
    (6, "honest", False): 0.674,
    (6, "liar", False): 0.815,
    (6, "mean", False): 0.744,
    (6, "honest", True): 0.874,
    (6, "liar", True): 0.904,
    (6, "mean", True): 0.889,
}


@dataclass(frozen=True)
class SelfPlayGame:
    """One game of an experiment: the setup, the search seed, and which test image it is."""

    setup: DebateSetup
    seed: int
    image_id: int | None = None

    @property
    def order(self) -> str:
        return HONEST if self.setup.honest_first else LIAR


def play_game(
    image,
    true_label: int,
    lie: int | None,
    pixels: int,
    honest_first: bool,
    precommit: bool,
    rollouts: int,
    seed: int,
    evaluator: Evaluator,
    config: SearchConfig | None = None,
    image_id: int | None = None,
) -> dict:
    """Play one game by tree search for both debaters and return its result (see `game_result`).

    `config` sets the search options (defaults: SearchConfig()); `rollouts` overrides its rollouts.
    """
    config = replace(config or SearchConfig(), rollouts=rollouts)
    game = SelfPlayGame(
        DebateSetup(np.asarray(image), true_label, lie, pixels, honest_first, precommit), seed, image_id
    )
    ((_, result),) = play_games([game], evaluator, config)
    return result


def choose_move(
    setup: DebateSetup, revealed: Iterable[int], evaluator: Evaluator, config: SearchConfig, seed: int
) -> int:
    """The tree-search debater's move for the side to move after `revealed` (pixels in order).

    Deterministic given the position, config and seed. Raises GameError for an illegal position.
    """
    state = GameState(setup)
    for pixel in revealed:
        state = state.play(pixel)
    if state.is_over:
        raise GameError(f"the game is over: all {setup.pixels} pixels are revealed")
    search = TreeSearch(setup, config, seed)
    for pixel in state.revealed:
        search.advance(pixel)
    ((_, move),) = run_lockstep([(search.choose_move(), JudgeCache(setup.image))], evaluator)
    return move


def verdict(setup: DebateSetup, revealed: Iterable[int], evaluator: Evaluator) -> dict:
    """The AI judge on a finished game: {"logits", "judge_label", "honest_margin", "winner"}."""
    state = GameState(setup)
    for pixel in revealed:
        state = state.play(pixel)
    logits = np.asarray(evaluator(batch_judge_planes(setup.image, [state.revealed])), dtype=np.float32)[0]
    return {
        "logits": [float(x) for x in logits],
        "judge_label": int(logits.argmax()),
        "honest_margin": setup.honest_margin(logits),
        "winner": state.winner(logits),
    }


def play_games(
    games: Iterable[SelfPlayGame],
    evaluator: Evaluator,
    config: SearchConfig,
    max_active: int = 256,
    max_batch: int = 1024,
    stats: DriverStats | None = None,
) -> Iterator[tuple[SelfPlayGame, dict]]:
    """Play many games at once; yield (game, result) in the order they finish."""
    caches: dict[bytes, JudgeCache] = {}  # per image, while any of its games runs
    running: dict[bytes, int] = {}
    started: dict[int, SelfPlayGame] = {}

    def searches():
        for number, game in enumerate(games):
            if not isinstance(game, SelfPlayGame):
                raise TypeError(f"expected a SelfPlayGame, got {type(game).__name__}")
            image = game.setup.image.tobytes()
            if image not in caches:
                caches[image], running[image] = JudgeCache(game.setup.image), 0
            running[image] += 1
            started[number] = game
            yield play_moves(game.setup, config, game.seed), caches[image]

    for number, moves in run_lockstep(searches(), evaluator, max_batch, max_active, stats):
        game = started.pop(number)
        image = game.setup.image.tobytes()
        running[image] -= 1
        if running[image] == 0:
            del running[image], caches[image]
        yield game, game_result(game, config, moves["moves"], moves["logits"])


def game_result(game: SelfPlayGame, config: SearchConfig, moves: list[int], logits) -> dict:
    """A JSON-ready record of a finished game.

    Keys: image_id, true_label, lie (None without precommit), pixels, honest_first, precommit, seed,
    search (the SearchConfig as a dict), moves (in order: pixel, row, column, grey value, player),
    logits (the judge's 10 logits on the final mask), judge_label (their arg-max), honest_margin,
    winner ("honest" or "liar").
    """
    setup = game.setup
    flat = setup.image.reshape(-1)
    logits = np.asarray(logits, dtype=np.float32)
    return {
        "image_id": game.image_id,
        "true_label": setup.true_label,
        "lie": setup.lie,
        "pixels": setup.pixels,
        "honest_first": setup.honest_first,
        "precommit": setup.precommit,
        "seed": game.seed,
        "search": dict(config.__dict__),
        "moves": [
            {
                "pixel": int(p),
                "row": int(p) // SIDE,
                "column": int(p) % SIDE,
                "value": int(flat[p]),
                "player": setup.mover(ply),
            }
            for ply, p in enumerate(moves)
        ],
        "logits": [float(x) for x in logits],
        "judge_label": int(logits.argmax()),
        "honest_margin": setup.honest_margin(logits),
        "winner": HONEST if setup.honest_wins(logits) else LIAR,
    }


def sample_image_ids(count: int, seed: int | None = None, total: int = 10_000) -> list[int]:
    """The first `count` test images, or with a seed a sorted random sample of `count` of them."""
    if not 1 <= count <= total:
        raise ValueError(f"count must be between 1 and {total}, got {count}")
    if seed is None:
        return list(range(count))
    return sorted(int(i) for i in np.random.default_rng(seed).choice(total, size=count, replace=False))


def table2_games(
    images: np.ndarray,
    labels: np.ndarray,
    image_ids: Iterable[int] | None = None,
    pixels: int = 6,
    seeds: int = 3,
    orders: Iterable[str] = ORDERS,
    precommit: Iterable[bool] = (True, False),
    first_seed: int = 0,
) -> list[SelfPlayGame]:
    """The games of Table 2 for one pixel budget, image by image.

    Per image: with precommit, one game per lie (9), move order and seed; without precommit, one per
    move order and seed. Seeds are first_seed .. first_seed + seeds - 1.
    """
    image_ids = list(range(len(images))) if image_ids is None else list(image_ids)
    if len(image_ids) != len(images) or len(labels) != len(images):
        raise ValueError("images, labels and image_ids must have the same length")
    orders, variants = list(orders), list(precommit)
    if not set(orders) <= set(ORDERS) or not orders:
        raise ValueError(f"orders must be a non-empty subset of {ORDERS}, got {orders}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1, got {seeds}")
    games = []
    for image, label, image_id in zip(images, labels, image_ids):
        label = int(label)
        for committed in variants:
            lies = [lie for lie in range(LABELS) if lie != label] if committed else [None]
            for order in orders:
                for lie in lies:
                    setup = DebateSetup(image, label, lie, pixels, order == HONEST, committed)
                    games.extend(SelfPlayGame(setup, first_seed + s, int(image_id)) for s in range(seeds))
    return games


def image_outcomes(results: Iterable[dict], rule: str = "majority") -> dict[tuple, bool]:
    """Whether the honest side wins each image: {(image_id, pixels, first mover, precommit): bool}.

    The liar wins an image if any of its lies wins; a lie's games over the seeds are combined by
    `rule` (see the module docstring).
    """
    if rule not in AGGREGATION_RULES:
        raise ValueError(f"rule must be one of {', '.join(AGGREGATION_RULES)}, got {rule!r}")
    lies: dict[tuple, list[dict]] = {}
    for result in results:
        order = HONEST if result["honest_first"] else LIAR
        image_key = (result["image_id"], result["pixels"], order, result["precommit"])
        lies.setdefault((image_key, result["true_label"], result["lie"]), []).append(result)
    outcomes: dict[tuple, bool] = {}
    for (image_key, true_label, lie), games in lies.items():
        honest_holds = _honest_wins_lie(games, rule, true_label, lie)
        outcomes[image_key] = outcomes.get(image_key, True) and honest_holds
    return outcomes


def _honest_wins_lie(games: list[dict], rule: str, true_label: int, lie: int | None) -> bool:
    if rule == "majority":
        honest_games = sum(g["winner"] == HONEST for g in games)
        return honest_games * 2 > len(games)
    mean_logits = np.mean([g["logits"] for g in games], axis=0)
    rival = mean_logits[lie] if games[0]["precommit"] else np.delete(mean_logits, true_label).max()
    return bool(mean_logits[true_label] > rival)


def table2_rows(outcomes: dict[tuple, bool]) -> list[dict]:
    """Honest win rates per (pixels, first mover, precommit) and the mean of both orders.

    The mean row pools both orders' games (2n games on n images); its Wilson interval treats them
    as independent, which is slightly narrower than a paired interval would be.
    """
    groups: dict[tuple, list[bool]] = {}
    for (_, pixels, order, committed), honest in outcomes.items():
        groups.setdefault((pixels, order, committed), []).append(honest)
        groups.setdefault((pixels, "mean", committed), []).append(honest)
    rows = []
    for pixels, order, committed in sorted(groups, key=lambda k: (-k[0], k[2], ["honest", "liar", "mean"].index(k[1]))):
        wins = groups[(pixels, order, committed)]
        low, high = wilson_interval(sum(wins), len(wins))
        rows.append(
            {
                "pixels": pixels,
                "first": order,
                "precommit": committed,
                "honest_wins": sum(wins),
                "games": len(wins),
                "rate": sum(wins) / len(wins),
                "low": low,
                "high": high,
                "paper": PAPER_TABLE2.get((pixels, order, committed)),
            }
        )
    return rows


def format_table2(rows: list[dict], judge_alone: dict[int, float] | None = None) -> str:
    """A plain-text table of `table2_rows`, the paper's numbers beside ours.

    n is the number of images (for the mean row: both orders' outcomes, twice the images).
    """
    lines = [
        f"{'pixels':>6}  {'first':<6}  {'variant':<12}  {'honest wins':>11}  {'n':>5}  "
        f"{'95% interval':<13}  {'paper':>6}"
    ]
    for row in rows:
        variant = "precommit" if row["precommit"] else "no precommit"
        paper = f"{row['paper']:.1%}" if row["paper"] is not None else "-"
        interval = f"{row['low']:.1%}-{row['high']:.1%}"
        lines.append(
            f"{row['pixels']:>6}  {row['first']:<6}  {variant:<12}  {row['rate']:>11.1%}  {row['games']:>5}  "
            f"{interval:<13}  {paper:>6}"
        )
    for pixels, accuracy in sorted((judge_alone or {}).items(), reverse=True):
        lines.append(
            f"judge alone, {pixels} random nonzero pixels: {accuracy:.1%} (paper {PAPER_JUDGE_ACCURACY[pixels]:.1%})"
        )
    return "\n".join(lines)


def random_nonzero_masks(images: np.ndarray, pixels: int, seed: int) -> list[tuple[int, ...]]:
    """For each image, `pixels` distinct nonzero pixels drawn uniformly (numpy, seeded)."""
    rng = np.random.default_rng(seed)
    masks = []
    for image in images:
        nonzero = np.flatnonzero(np.asarray(image).reshape(-1))
        if len(nonzero) < pixels:
            raise ValueError(f"an image has {len(nonzero)} nonzero pixels, fewer than {pixels}")
        masks.append(tuple(int(p) for p in rng.choice(nonzero, size=pixels, replace=False)))
    return masks


def judge_accuracy(
    evaluator: Evaluator, images: np.ndarray, labels: np.ndarray, pixels: int, seed: int = 0, batch: int = 1000
) -> float:
    """The judge alone: accuracy (arg-max) on `pixels` random nonzero pixels of each image."""
    masks = random_nonzero_masks(images, pixels, seed)
    correct = 0
    for start in range(0, len(images), batch):
        planes = np.concatenate(
            [
                batch_judge_planes(image, [mask])
                for image, mask in zip(images[start : start + batch], masks[start : start + batch])
            ]
        )
        predicted = np.asarray(evaluator(planes)).argmax(axis=1)
        correct += int((predicted == np.asarray(labels[start : start + batch])).sum())
    return correct / len(images)
