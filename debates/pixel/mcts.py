"""Monte Carlo tree search for the pixel debate, as Irving et al. (2018) state it, made fast.

Pure module (numpy only; the judge network sits behind an evaluator, see evaluator.py).

What the paper fixes
- Every move runs `rollouts` rollouts (paper: 10,000). A rollout descends the tree to a leaf and
  evaluates it with the judge.
- Selection is PUCT as in AlphaGo Zero: at node s pick the move a maximising
  Q(s, a) + c_puct * P(s, a) * sqrt(sum_b N(s, b)) / (1 + N(s, a)), with c_puct = 1 and the constant
  uniform prior P = 1 / (number of legal moves). Ties are broken at random.
- The move played is the root child with the most visits (ties at random as well).

What the paper leaves open, and what we chose (each alternative is an option of SearchConfig)
- Leaf value (`leaf`): "judge" (default) evaluates a non-terminal leaf's partial mask with the judge,
  the same verdict rule as at the end of the game; "playout" plays uniformly random legal moves to
  the end of the game and judges the final mask.
- Value scale (`value`): "win" (default) is +1 when the verdict favours the honest side, -1 when it
  favours the liar (ties favour the liar, see game.py); "margin" is the honest side's logit margin
  (true label minus lie, or minus the best wrong label without precommit). +-1 keeps Q on the scale
  that c_puct = 1 was tuned for in AlphaGo Zero; a margin in logits is unbounded.
- Unvisited moves have Q = 0 (AlphaGo Zero). With values in [-1, 1] a move is therefore explored
  until it looks losing, then the search turns to untried moves.
- Tree reuse (`reuse_tree`, default on, as AlphaGo Zero): after a move the subtree below it is kept,
  and the next move adds `rollouts` fresh rollouts to it. One tree serves both debaters: each plays
  its own moves from it, maximising its own side's value.
- Each node is evaluated once, when a rollout first reaches it; a terminal node keeps its verdict,
  so later visits cost nothing.

What makes it fast
- The judge sees a set of pixels, not who revealed them nor in what order, so its logits are cached
  per image by the frozenset of revealed pixels (JudgeCache). Transpositions in the tree, the two
  debaters' shared positions, later moves of the same game and every other game on the same image
  (9 lies x seeds x orders x both verdict rules) reuse each evaluation.
- Searches are generators: a rollout that needs the judge yields the positions it wants judged and
  waits. `run_lockstep` drives many games at once and evaluates the cache misses of all of them in
  one batched judge call. With `leaves_per_batch=1` every search makes exactly the decisions the
  plain search makes: batching across games does not change any game.
- Within one game, `leaves_per_batch=L > 1` collects L leaves per judge call using a virtual loss
  (each pending rollout counts, until its value arrives, as a visit lost for the side that chose it,
  steering the other rollouts of the batch elsewhere). This does change the search a little; the
  benchmark (bench/pixel_search.py) measures its win rates against the plain search.
- evaluator.JudgeEvaluator(sparse=True) computes the judge network from the few revealed pixels
  instead of the whole 28x28 input: the same logits (to 1e-6), about twice as fast in batches.
- A node's move list and statistics exist only once a rollout has passed through it (most nodes
  stay leaves). A game's tree and cache still peak at about 3-6 MB at 1,000 rollouts per move and
  15-30 MB at 10,000 (measured): size `max_active` of run_lockstep / selfplay.play_games to the
  machine's memory.

`run_plain` is the baseline for the benchmark only: one leaf per judge call and no cache.
"""

import itertools
import math
import random
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from .game import DebateSetup, batch_judge_planes

LEAF_MODES = ("judge", "playout")
VALUE_MODES = ("win", "margin")

# A search or game yields a list of positions (revealed pixels, in order) it wants judged and is
# sent back the judge's logits for each, in the same order.
Requests = list[tuple[int, ...]]
Evaluator = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SearchConfig:
    rollouts: int = 10_000
    c_puct: float = 1.0
    leaf: str = "judge"
    value: str = "win"
    leaves_per_batch: int = 1
    reuse_tree: bool = True

    def __post_init__(self):
        if not _is_count(self.rollouts):
            raise ValueError(f"rollouts must be a positive integer, got {self.rollouts!r}")
        if not self.c_puct > 0:
            raise ValueError(f"c_puct must be positive, got {self.c_puct!r}")
        if self.leaf not in LEAF_MODES:
            raise ValueError(f"leaf must be one of {', '.join(LEAF_MODES)}, got {self.leaf!r}")
        if self.value not in VALUE_MODES:
            raise ValueError(f"value must be one of {', '.join(VALUE_MODES)}, got {self.value!r}")
        if not _is_count(self.leaves_per_batch):
            raise ValueError(f"leaves_per_batch must be a positive integer, got {self.leaves_per_batch!r}")


def _is_count(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1


class Node:
    """A position in the tree. Statistics are per legal move, from the view of the side to move here.

    A node's move list and statistics are made when a rollout first passes through it: most nodes
    stay leaves, and a game at 10,000 rollouts per move holds thousands of them.
    """

    __slots__ = (
        "revealed",
        "honest_to_move",
        "is_terminal",
        "moves",
        "visits",
        "total_visits",
        "value_sums",
        "mean_values",
        "exploration_shares",
        "children",
        "terminal_value",
        "_moves_from",
    )

    def __init__(self, setup: DebateSetup, revealed: tuple[int, ...], moves_from: tuple[np.ndarray, int | None]):
        self.revealed = revealed
        self.honest_to_move = setup.mover(len(revealed)) == "honest"
        self.is_terminal = len(revealed) >= setup.pixels
        self.terminal_value: float | None = None  # honest side's value, once a terminal node is judged
        self.moves: np.ndarray | None = None  # legal moves, ascending, once expanded
        self._moves_from = moves_from  # (the parent's moves, the index played there), or (moves, None)

    def legal_moves(self) -> np.ndarray:
        if self.moves is not None:
            return self.moves
        parent_moves, played = self._moves_from
        return parent_moves if played is None else np.delete(parent_moves, played)

    def expand(self) -> None:
        self.moves = self.legal_moves()
        self._moves_from = None
        count = len(self.moves)
        self.visits = np.zeros(count)
        self.total_visits = 0
        self.value_sums = np.zeros(count)
        self.mean_values = np.zeros(count)  # Q; 0 for an unvisited move, as in AlphaGo Zero
        self.exploration_shares = np.ones(count)  # 1 / (1 + N), kept up to date to spare a division
        self.children: list[Node | None] = [None] * count

    def add_visit(self, index: int, virtual_loss: float) -> None:
        visits = self.visits[index] + 1.0
        self.visits[index] = visits
        self.total_visits += 1
        self.value_sums[index] -= virtual_loss
        self.mean_values[index] = self.value_sums[index] / visits
        self.exploration_shares[index] = 1.0 / (1.0 + visits)

    def add_value(self, index: int, value: float) -> None:
        self.value_sums[index] += value
        self.mean_values[index] = self.value_sums[index] / self.visits[index]


class TreeSearch:
    """PUCT search for one game. `choose_move` is a generator (see Requests); then `advance`."""

    def __init__(self, setup: DebateSetup, config: SearchConfig, seed: int):
        self.setup = setup
        self.config = config
        self.rng = random.Random(seed)
        self.root = Node(setup, (), (setup.nonzero, None))
        self.root.expand()
        self.virtual_loss = 1.0 if config.leaves_per_batch > 1 else 0.0

    def choose_move(self) -> Generator[Requests, list, int]:
        """Run `config.rollouts` rollouts from the root and return the most visited move."""
        if self.root.is_terminal:
            raise ValueError("the game is over: there is no move to choose")
        done = 0
        while done < self.config.rollouts:
            waiting = []  # (leaf node, path, position to judge)
            while done < self.config.rollouts and len(waiting) < self.config.leaves_per_batch:
                leaf, path = self._descend()
                done += 1
                if leaf.terminal_value is not None:
                    self._back_up(path, leaf.terminal_value)
                else:
                    waiting.append((leaf, path, self._position_to_judge(leaf)))
            if waiting:
                logits = yield [position for _, _, position in waiting]
                for (leaf, path, _), leaf_logits in zip(waiting, logits):
                    value = self._value(leaf_logits)
                    if leaf.is_terminal:
                        leaf.terminal_value = value
                    self._back_up(path, value)
        return int(self.root.moves[self._random_argmax(self.root.visits)])

    def advance(self, pixel: int) -> None:
        """Move the root to the position after `pixel` is revealed."""
        if self.root.is_terminal:
            raise ValueError("the game is over: no more pixels can be revealed")
        index = int(np.searchsorted(self.root.moves, pixel))
        if index >= len(self.root.moves) or self.root.moves[index] != pixel:
            raise ValueError(f"pixel {pixel} is not a legal move here")
        child = self.root.children[index]
        if child is None or not self.config.reuse_tree:
            child = self._new_child(self.root, index)
        if not child.is_terminal and child.moves is None:
            child.expand()
        self.root = child

    def _descend(self) -> tuple[Node, list[tuple[Node, int]]]:
        node, path = self.root, []
        while True:
            index = self._select(node)
            path.append((node, index))
            node.add_visit(index, self.virtual_loss)
            child = node.children[index]
            if child is None:
                child = node.children[index] = self._new_child(node, index)
                return child, path
            if child.is_terminal:
                return child, path
            if child.moves is None:
                child.expand()
            node = child

    def _new_child(self, node: Node, index: int) -> Node:
        return Node(self.setup, node.revealed + (int(node.moves[index]),), (node.moves, index))

    def _select(self, node: Node) -> int:
        """The PUCT choice: arg-max of Q + c_puct * P * sqrt(sum N) / (1 + N), ties at random."""
        if node.total_visits == 0:  # every score is 0: all moves tie
            return self.rng.randrange(len(node.moves))
        weight = self.config.c_puct * math.sqrt(node.total_visits) / len(node.moves)
        return self._random_argmax(node.mean_values + weight * node.exploration_shares)

    def _random_argmax(self, scores: np.ndarray) -> int:
        best = (scores == scores.max()).nonzero()[0]
        return int(best[0]) if len(best) == 1 else int(best[self.rng.randrange(len(best))])

    def _position_to_judge(self, leaf: Node) -> tuple[int, ...]:
        if leaf.is_terminal or self.config.leaf == "judge":
            return leaf.revealed
        missing = self.setup.pixels - len(leaf.revealed)
        moves = leaf.legal_moves()
        return leaf.revealed + tuple(int(moves[i]) for i in self.rng.sample(range(len(moves)), missing))

    def _value(self, logits) -> float:
        if self.config.value == "win":
            return 1.0 if self.setup.honest_wins(logits) else -1.0
        return self.setup.honest_margin(logits)

    def _back_up(self, path: list[tuple[Node, int]], honest_value: float) -> None:
        for node, index in path:
            node.add_value(index, (honest_value if node.honest_to_move else -honest_value) + self.virtual_loss)


def play_moves(setup: DebateSetup, config: SearchConfig, seed: int) -> Generator[Requests, list, dict]:
    """One whole game by tree search; returns {"moves": [...], "logits": final judge logits}."""
    search = TreeSearch(setup, config, seed)
    moves = []
    for _ in range(setup.pixels):
        pixel = yield from search.choose_move()
        moves.append(pixel)
        search.advance(pixel)
    (final,) = yield [tuple(moves)]
    return {"moves": moves, "logits": np.asarray(final, dtype=np.float32)}


class JudgeCache:
    """The judge's logits for positions of one image, keyed by the set of revealed pixels."""

    def __init__(self, image: np.ndarray):
        self.image = np.asarray(image)
        self.logits: dict[frozenset, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.logits)


@dataclass
class DriverStats:
    requests: int = 0  # positions the searches asked to have judged
    evaluations: int = 0  # positions the judge network actually evaluated
    judge_calls: int = 0
    judge_seconds: float = 0.0  # wall time inside the evaluator
    judge_cpu_seconds: float = 0.0  # this process's CPU time inside the evaluator

    @property
    def cache_hit_rate(self) -> float:
        return 1.0 - self.evaluations / self.requests if self.requests else 0.0


def run_lockstep(
    jobs: Iterable[tuple[Generator, JudgeCache]],
    evaluator: Evaluator,
    max_batch: int = 1024,
    max_active: int = 256,
    stats: DriverStats | None = None,
) -> Iterator[tuple[int, object]]:
    """Drive many searches or games at once; yield (job number, generator's result) as each finishes.

    At most `max_active` jobs run at a time; a finished one is replaced by the next from `jobs`.
    A job runs on as long as its cache answers it; the positions nobody has judged yet are collected
    from all the running jobs and judged together, in calls of at most `max_batch` positions.
    """
    if max_batch < 1 or max_active < 1:
        raise ValueError("max_batch and max_active must be at least 1")
    stats = stats if stats is not None else DriverStats()
    queue = enumerate(jobs)
    running: dict[int, tuple[Generator, JudgeCache, Requests]] = {}
    finished: list[tuple[int, object]] = []

    def send(number, game, cache, answers):
        try:
            running[number] = (game, cache, next(game) if answers is None else game.send(answers))
        except StopIteration as result:
            running.pop(number, None)
            finished.append((number, result.value))

    while True:
        for number, (game, cache) in itertools.islice(queue, max_active - len(running)):
            send(number, game, cache, None)
        yield from finished
        finished.clear()
        if not running:
            return
        wanted: dict[tuple[int, frozenset], tuple[JudgeCache, tuple]] = {}
        for number in list(running):
            while number in running:
                game, cache, request = running[number]
                keys = [frozenset(position) for position in request]
                answers = [cache.logits.get(key) for key in keys]
                if any(answer is None for answer in answers):
                    for key, position, answer in zip(keys, request, answers):
                        if answer is None:
                            wanted[(id(cache), key)] = (cache, position)
                    break
                stats.requests += len(keys)
                send(number, game, cache, answers)
        _judge(list(wanted.values()), evaluator, max_batch, stats)


def _judge(wanted: list[tuple[JudgeCache, tuple]], evaluator: Evaluator, max_batch: int, stats: DriverStats) -> None:
    for start in range(0, len(wanted), max_batch):
        chunk = wanted[start : start + max_batch]
        by_image: dict[int, list] = {}
        for cache, position in chunk:
            by_image.setdefault(id(cache), []).append((cache, position))
        chunk = [item for group in by_image.values() for item in group]
        planes = np.concatenate(
            [batch_judge_planes(group[0][0].image, [position for _, position in group]) for group in by_image.values()]
        )
        started, started_cpu = time.perf_counter(), time.process_time()
        logits = np.asarray(evaluator(planes), dtype=np.float32)
        stats.judge_seconds += time.perf_counter() - started
        stats.judge_cpu_seconds += time.process_time() - started_cpu
        stats.judge_calls += 1
        stats.evaluations += len(chunk)
        for (cache, position), row in zip(chunk, logits):
            cache.logits[frozenset(position)] = row


def run_plain(game: Generator, image: np.ndarray, evaluator: Evaluator, stats: DriverStats | None = None):
    """The baseline: every position is judged on its own (a batch of one), nothing is cached."""
    stats = stats if stats is not None else DriverStats()
    try:
        request = next(game)
        while True:
            answers = []
            for position in request:
                planes = batch_judge_planes(image, [position])
                started, started_cpu = time.perf_counter(), time.process_time()
                answers.append(np.asarray(evaluator(planes), dtype=np.float32)[0])
                stats.judge_seconds += time.perf_counter() - started
                stats.judge_cpu_seconds += time.process_time() - started_cpu
                stats.requests += 1
                stats.evaluations += 1
                stats.judge_calls += 1
            request = game.send(answers)
    except StopIteration as finished:
        return finished.value
