"""The paper's Table 2 by self-play, every game stored as a platform debate.

A run (SelfPlayRun) names its images, pixel budgets, seeds and search settings. Its work is split
into units, one per (image, pixels, precommit): all the games of that image and setting (both move
orders, each lie, each seed), which share one judge cache. `run_units` plays the games of several
units that are not stored yet, all in lockstep (each judge call evaluates the new positions of every
running game, the batch a GPU needs), and stores each as it finishes: a Debate (source "pixel-selfplay", external_id
"<run>/<image>/<pixels>px/<pc|npc>/<first mover>-first/<lie>/s<seed>", turns = reveals, status
complete) with the pixel judge's Verdict. So a unit is idempotent, a stopped run continues where it
stopped, and the table is always read back from the stored games.

Without precommit the liar claims no digit; its seat is stored arguing for the wrong digit the
judge ranked highest on the final mask (the answer the liar came closest to winning with).
"""

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
from django.db import IntegrityError, transaction

from debates import pixel_debates, provenance
from debates.models import Debate
from debates.pixel.game import HONEST, LIAR
from debates.pixel.mcts import SearchConfig
from debates.pixel.selfplay import (
    AGGREGATION_RULES,
    ORDERS,
    SelfPlayGame,
    format_table2,
    image_outcomes,
    play_games,
    sample_image_ids,
    table2_games,
    table2_rows,
)

from . import pixel_judge

SOURCE = "pixel-selfplay"
DEVICES = ("cpu", "cuda")


class RunMismatch(ValueError):
    """A run name already used with other settings."""


@dataclass(frozen=True)
class SelfPlayRun:
    name: str
    image_indices: tuple[int, ...]
    pixels: tuple[int, ...] = (6, 4)
    precommit: tuple[bool, ...] = (True, False)
    orders: tuple[str, ...] = ORDERS
    seeds: int = 3
    rollouts: int = 1000
    leaf: str = "judge"
    value: str = "win"
    leaves_per_batch: int = 1
    device: str = "cpu"  # where the judge runs; not part of the run's identity
    selection: dict = field(default_factory=dict)  # how the images were chosen (first N, or a seeded sample)

    def __post_init__(self):
        for name in ("image_indices", "pixels", "precommit", "orders"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if not self.name or "/" in self.name or len(self.name) > 60:
            problems.append("the run name must be 1 to 60 characters without '/'")
        if not self.image_indices or len(set(self.image_indices)) != len(self.image_indices):
            problems.append("give one or more distinct test images")
        if not set(self.pixels) <= set(pixel_debates.JUDGE_PIXELS) or not self.pixels:
            problems.append(f"pixels must be among {', '.join(map(str, pixel_debates.JUDGE_PIXELS))}")
        if not self.precommit or not set(self.precommit) <= {True, False}:
            problems.append("precommit must list True and/or False")
        if not self.orders or not set(self.orders) <= set(ORDERS):
            problems.append(f"orders must be among {', '.join(ORDERS)}")
        if not 1 <= self.seeds <= 100:
            problems.append("seeds must be between 1 and 100")
        if self.device not in DEVICES:
            problems.append(f"device must be one of {', '.join(DEVICES)}")
        if problems:
            raise ValueError("; ".join(problems))
        self.search_config()  # checks rollouts, leaf, value, leaves_per_batch

    def search_config(self) -> SearchConfig:
        return SearchConfig(
            rollouts=self.rollouts, leaf=self.leaf, value=self.value, leaves_per_batch=self.leaves_per_batch
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "SelfPlayRun":
        return cls(**data)

    def identity(self) -> dict:
        """The run's settings as stored with each game (the images by how they were chosen, not listed)."""
        found = {k: v for k, v in self.to_dict().items() if k not in ("device", "name", "image_indices")}
        found["search"] = asdict(self.search_config())
        return json.loads(json.dumps(found))

    def fingerprint(self, pixels: int) -> str:
        """What decides a game besides its image, lie, order and seed: the search settings and the
        judge's weights. A run may grow (more images, seeds, budgets) but never change these."""
        decisive = {
            "search": asdict(self.search_config()),
            "judge_sha256": pixel_debates.judge_identity(pixels)["weights_sha256"],
        }
        return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]

    def units(self) -> list[tuple[int, int, bool]]:
        return [
            (image, pixels, committed)
            for pixels in self.pixels
            for image in self.image_indices
            for committed in self.precommit
        ]

    def games_per_unit(self, precommit: bool) -> int:
        return len(self.orders) * self.seeds * (9 if precommit else 1)

    def total_games(self) -> int:
        return sum(self.games_per_unit(committed) for _, _, committed in self.units())


def external_id(run: SelfPlayRun, game: SelfPlayGame) -> str:
    setup = game.setup
    lie = f"lie{setup.lie}" if setup.lie is not None else "open"
    return (
        f"{run.name}/{game.image_id}/{setup.pixels}px/{'pc' if setup.precommit else 'npc'}/"
        f"{game.order}-first/{lie}/s{game.seed}"
    )


def run_debates(run_name: str):
    return Debate.objects.filter(source=SOURCE, external_id__startswith=f"{run_name}/")


def check_run(run: SelfPlayRun) -> None:
    """Raises RunMismatch when games of this run name were played with another search or judge."""
    for pixels in run.pixels:
        stored = (
            run_debates(run.name)
            .filter(external_id__contains=f"/{pixels}px/")
            .values_list("provenance", flat=True)
            .first()
        )
        if stored is None:
            continue
        earlier, now = (stored.get("pixel_selfplay") or {}).get("fingerprint"), run.fingerprint(pixels)
        if earlier != now:
            raise RunMismatch(
                f"run {run.name!r} played its {pixels}-pixel games with other search settings or "
                f"another judge (fingerprint {earlier}, now {now}): use the same settings and judge "
                f"to continue it, or another --run name"
            )


def unit_games(run: SelfPlayRun, image_index: int, pixels: int, precommit: bool) -> list[SelfPlayGame]:
    image, label = pixel_debates.test_image(image_index)
    return table2_games(
        np.asarray([image]),
        np.asarray([label]),
        [image_index],
        pixels=pixels,
        seeds=run.seeds,
        orders=run.orders,
        precommit=(precommit,),
    )


STORE_EVERY = 32  # finished games stored per transaction
IMAGES_PER_TASK = 4  # 6 px with precommit: 72 games in lockstep per task


Unit = tuple[int, int, bool]  # (image index, pixels, precommit)


def task_groups(units: Iterable[Unit], images_per_task: int = IMAGES_PER_TASK) -> list[list[Unit]]:
    """Units grouped for one task each: one pixel budget (one judge) per group, at most
    `images_per_task` images, in the run's order."""
    if images_per_task < 1:
        raise ValueError(f"images_per_task must be at least 1, got {images_per_task}")
    groups: list[list[Unit]] = []
    for unit in units:
        group = groups[-1] if groups else None
        if (
            group is None
            or group[0][1] != unit[1]
            or len({image for image, _, _ in group} | {unit[0]}) > images_per_task
        ):
            groups.append([unit])
        else:
            group.append(unit)
    return groups


def run_units(
    run: SelfPlayRun,
    units: Iterable[Unit],
    evaluator=None,
    on_stored: Callable[[int], None] | None = None,
    max_new: int | None = None,
) -> int:
    """Plays, in lockstep, and stores the units' games not stored yet; returns how many this call stored.
    The units must share a pixel budget. Finished games are stored in batches of STORE_EVERY;
    on_stored(n) is called after each batch. max_new: stop after storing that many."""
    units = [(int(image), int(pixels), bool(precommit)) for image, pixels, precommit in units]
    budgets = {pixels for _, pixels, _ in units}
    if len(budgets) > 1:
        raise ValueError(f"one call plays one pixel budget, got {sorted(budgets)}")
    games = {external_id(run, g): g for unit in units for g in unit_games(run, *unit)}
    done = set(run_debates(run.name).filter(external_id__in=list(games)).values_list("external_id", flat=True))
    missing = [g for key, g in games.items() if key not in done]
    if not missing or max_new == 0:
        return 0
    (pixels,) = budgets
    evaluator = evaluator or pixel_debates.judge_evaluator(pixels, run.device)
    judge = pixel_debates.judge_identity(pixels)
    questions, finished, stored = {}, [], 0
    for game, result in play_games(missing, evaluator, run.search_config()):
        finished.append((game, result))
        if len(finished) >= STORE_EVERY or (max_new is not None and stored + len(finished) >= max_new):
            stored += _store(run, finished, judge, questions, on_stored)
            finished = []
            if max_new is not None and stored >= max_new:
                return stored
    return stored + _store(run, finished, judge, questions, on_stored)


def _store(run, finished, judge, questions, on_stored) -> int:
    count = len(store_games(run, finished, judge, questions)) if finished else 0
    if count and on_stored is not None:
        on_stored(count)
    return count


def store_games(
    run: SelfPlayRun, finished: list[tuple[SelfPlayGame, dict]], judge: dict, questions: dict | None = None
) -> list[Debate]:
    """Finished games as complete debates with the judge's verdicts, in one transaction; games
    stored already are skipped. questions: a cache of image questions shared across calls."""
    questions = {} if questions is None else questions
    records = [_finished_game(run, game, result, questions) for game, result in finished]
    try:
        with transaction.atomic():
            debates = pixel_debates.record_finished_games(records)
            by_id = {record.external_id: result for record, (_, result) in zip(records, finished)}
            results = [by_id[d.external_id] for d in debates]
            pixel_judge.save_selfplay_verdicts(
                debates, [r["logits"] for r in results], [[m["pixel"] for m in r["moves"]] for r in results], judge
            )
            return debates
    except IntegrityError:  # some were stored at the same moment by another worker: one at a time
        if len(finished) == 1:
            return []
        return [d for item in finished for d in store_games(run, [item], judge, questions)]


def _finished_game(run: SelfPlayRun, game: SelfPlayGame, result: dict, questions: dict) -> pixel_debates.FinishedGame:
    setup = game.setup
    key = (game.image_id, setup.lie, setup.precommit)
    if key not in questions:
        questions[key] = pixel_debates.image_question(game.image_id, setup.lie, setup.precommit)
    question = questions[key]
    honest_seat, liar_seat = ("A", "B") if setup.honest_first else ("B", "A")
    liar_digit = setup.lie if setup.precommit else _strongest_wrong_digit(result["logits"], setup.true_label)
    agent = pixel_debates.PixelAgent(
        pixels=setup.pixels, rollouts=run.rollouts, seed=game.seed, move_delay=0, leaf=run.leaf, value=run.value
    ).to_dict()
    side_seat = {HONEST: honest_seat, LIAR: liar_seat}
    return pixel_debates.FinishedGame(
        source=SOURCE,
        external_id=external_id(run, game),
        question=question,
        protocol=pixel_debates.ai_game_protocol(setup.pixels),
        seats={
            honest_seat: (question.correct_index, agent),
            liar_seat: (question.answers.index(str(liar_digit)), agent),
        },
        reveals=[(side_seat[move["player"]], move["pixel"]) for move in result["moves"]],
        provenance={
            "code_version": provenance.code_version(),
            "pixel_selfplay": {
                "run": run.name,
                "fingerprint": run.fingerprint(setup.pixels),
                "run_config": run.identity(),
                "image_index": game.image_id,
                "game": result,
            },
        },
    )


def _strongest_wrong_digit(logits, true_label: int) -> int:
    scores = np.asarray(logits, dtype=np.float64).copy()
    scores[true_label] = -np.inf
    return int(scores.argmax())


# ---------------------------------------------------------------------------------------------
# Reading a run back


def stored_results(run_name: str) -> list[dict]:
    return list(run_debates(run_name).values_list("provenance__pixel_selfplay__game", flat=True))


def complete_units(run: SelfPlayRun, results: Iterable[dict]) -> set[tuple[int, int, bool]]:
    counts: dict[tuple, int] = {}
    for r in results:
        key = (r["image_id"], r["pixels"], r["precommit"])
        counts[key] = counts.get(key, 0) + 1
    return {unit for unit in run.units() if counts.get(unit, 0) >= run.games_per_unit(unit[2])}


def table(run: SelfPlayRun, rule: str = "majority") -> tuple[list[dict], dict]:
    """Table 2 rows from the stored games of the run's complete units, and counts."""
    if rule not in AGGREGATION_RULES:
        raise ValueError(f"aggregation must be one of {', '.join(AGGREGATION_RULES)}")
    results = stored_results(run.name)
    complete = complete_units(run, results)
    used = [r for r in results if (r["image_id"], r["pixels"], r["precommit"]) in complete]
    rows = table2_rows(image_outcomes(used, rule))
    return rows, {
        "games": len(results),
        "games_in_table": len(used),
        "units_complete": len(complete),
        "units": len(run.units()),
    }


def judge_alone(pixels: int, image_indices=None, seed: int = 0, device: str = "cpu") -> float:
    """The judge alone on random nonzero masks (the table's first column) over the given test
    images (default: the whole test set)."""
    from debates.pixel.selfplay import judge_accuracy

    images, labels = pixel_debates.mnist_test_set()
    if image_indices is not None:
        chosen = np.asarray(list(image_indices))
        images, labels = images[chosen], labels[chosen]
    return judge_accuracy(pixel_debates.judge_evaluator(pixels, device), images, labels, pixels, seed=seed)


def format_run_table(run: SelfPlayRun, rule: str, judge_accuracy: dict[int, float] | None) -> str:
    rows, counts = table(run, rule)
    header = (
        f"Table 2, run {run.name!r}: {counts['units_complete']} of {counts['units']} image settings complete, "
        f"{counts['games_in_table']} games; {run.rollouts} rollouts per move, leaf value {run.leaf}, "
        f"{run.value} values, {run.seeds} seed(s) per lie combined by {rule}. Honest win rates with 95% "
        f"Wilson intervals, the paper's beside them."
    )
    return header + "\n" + format_table2(rows, judge_accuracy)


def image_selection(
    first: int | None = None, sample: int | None = None, sample_seed: int = 0
) -> tuple[list[int], dict]:
    """The first `first` test images, or a seeded sample of `sample` of them (sorted)."""
    if (first is None) == (sample is None):
        raise ValueError("give either the first N images or a sample size")
    total = len(pixel_debates.mnist_test_set()[1])
    if first is not None:
        return sample_image_ids(first, None, total), {"first": first}
    return sample_image_ids(sample, sample_seed, total), {"sample": sample, "sample_seed": sample_seed}
