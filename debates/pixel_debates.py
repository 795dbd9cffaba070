"""The MNIST pixel debate (Irving, Christiano & Amodei 2018) as platform debates.

- Image questions from MNIST test digits: one Question per (image, lie) for the precommit game,
  whose two answers are the true digit and the lie, or one per image with the ten digits for the
  no-precommit game. Answers are digit strings in ascending order, so their order tells nothing.
- Protocols: the paper's AI game (sequential rounds, every turn reveals one nonzero pixel,
  `pixels / 2` reveals per debater) and its human prototype (statements and rectangles are
  claims; each debater may reveal at most one pixel over the whole debate).
- `create_pixel_debate(mode, ...)`: AI vs AI, human vs human or human vs AI. AI seats are tree
  search debaters (agent {"backend": "pixel_mcts", ...}, played by debates.pixel_player).
- The judge networks: the shipped judges (debates.pixel.judges), or, for development and tests,
  a file named by DEBATELAB_PIXEL_JUDGE_<N>PX (a weights file or a training checkpoint, read only).
- `record_finished_games`: stores games played elsewhere (self-play) as finished debates, every
  reveal checked by the protocol engine, in a few bulk statements.
- Judge evaluations run on DEBATELAB_TORCH_THREADS threads per process (default 1): on a small
  shared machine one thread per process is several times faster than torch's default (measured
  6x for the search's small batches on 2 busy cores); scale out with processes instead.
"""

import functools
import hashlib
import json
import os
import random
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from django.db import IntegrityError, transaction
from django.utils import timezone

from . import provenance, services
from .models import Debate, DebateEvent, Participant, Question, Turn
from .pixel import mnist
from .pixel.game import LABELS, SIDE
from .pixel.mcts import LEAF_MODES, VALUE_MODES
from .protocol import EVERYONE, SEQUENTIAL, Action, DebateEngine, Event, Protocol, Refused

QUESTION_SOURCE = "mnist-test"
PIXEL_BACKEND = "pixel_mcts"
MODES = ("ai_vs_ai", "human_vs_human", "human_vs_ai")
SIDES = ("honest", "liar")
JUDGE_PIXELS = (4, 6)  # the trained judges: 4 and 6 revealed pixels
JUDGE_OVERRIDE_ENV = "DEBATELAB_PIXEL_JUDGE_{pixels}PX"
TORCH_THREADS_ENV = "DEBATELAB_TORCH_THREADS"
QUESTION_TEXT = "Which digit is this?"
PUBLIC_MATERIAL = (
    "A handwritten digit from the MNIST test set. The debaters see the whole image; you see only "
    "the pixels they reveal. Revealed pixels are evidence; statements and rectangles are claims."
)


class JudgeMissing(FileNotFoundError):
    """No judge network for this pixel count (not trained or not shipped yet)."""


# ---------------------------------------------------------------------------------------------
# Images and questions


@functools.cache
def mnist_test_set():
    """(images (10000, 28, 28) uint8, labels (10000,) uint8), fetched and verified once."""
    return mnist.load("test", mnist.fetch())


def test_image(index: int):
    """(image, true label) of MNIST test image `index`."""
    images, labels = mnist_test_set()
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(images):
        raise Refused("bad_image", f"an MNIST test image is a number 0..{len(images) - 1}, got {index!r}")
    return images[index], int(labels[index])


def image_question(index: int, lie: int | None = None, precommit: bool = True) -> Question:
    """The image question for test image `index`: answers [true digit, lie] (ascending) with
    precommit, or all ten digits without. Created once, then found again."""
    image, label = test_image(index)
    if precommit:
        if isinstance(lie, bool) or not isinstance(lie, int) or not 0 <= lie < LABELS or lie == label:
            raise Refused("bad_lie", f"the lie must be a digit 0..9 other than the true one (got {lie!r})")
        digits = sorted([label, lie])
        external_id = f"test-{index}-lie-{lie}"
    else:
        digits = list(range(LABELS))
        external_id = f"test-{index}-open"
    defaults = {
        "kind": Question.KIND_IMAGE,
        "text": QUESTION_TEXT,
        "public_material": PUBLIC_MATERIAL,
        "answers": [str(d) for d in digits],
        "correct_index": digits.index(label),
        "hidden_image": image.astype(int).tolist(),
        "title": "MNIST digit (pixel debate)",
        "metadata": {
            "mnist": {
                "split": "test",
                "index": index,
                "label": label,
                "precommit": precommit,
                "images_sha256": mnist.SHA256["t10k-images-idx3-ubyte"],
            }
        },
    }
    try:
        with transaction.atomic():
            question, _ = Question.objects.get_or_create(
                source=QUESTION_SOURCE, external_id=external_id, defaults=defaults
            )
    except IntegrityError:  # created at the same moment by another worker
        question = Question.objects.get(source=QUESTION_SOURCE, external_id=external_id)
    return question


def digit_of(question: Question, answer_index: int) -> int:
    return int(question.answers[answer_index])


# ---------------------------------------------------------------------------------------------
# Protocols


def ai_game_protocol(pixels: int = 6, char_limit: int = 300) -> Protocol:
    """The paper's game: debaters alternate, each turn reveals one nonzero pixel, `pixels` in all."""
    if isinstance(pixels, bool) or not isinstance(pixels, int) or pixels < 2 or pixels % 2:
        raise Refused("bad_pixels", f"the pixel budget is an even number of reveals, 2 or more (got {pixels!r})")
    return Protocol(
        rounds=(SEQUENTIAL,) * (pixels // 2),
        evidence="pixels",
        reveals_per_debater=pixels // 2,
        reveal_each_turn=True,
        judge_may_end=False,
        char_limit=char_limit,
    )


def human_game_protocol(rounds: int = 4, char_limit: int = 500, turn_seconds: int | None = None) -> Protocol:
    """The paper's human prototype: statements in turn, rectangles as claims, one real pixel each."""
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 20:
        raise Refused("bad_rounds", f"a human pixel debate has 1 to 20 rounds (got {rounds!r})")
    return Protocol(
        rounds=(SEQUENTIAL,) * rounds,
        evidence="pixels",
        reveals_per_debater=1,
        judge_may_end=False,
        char_limit=char_limit,
        turn_seconds=turn_seconds,
    )


# ---------------------------------------------------------------------------------------------
# The tree search debater's settings


@dataclass(frozen=True)
class PixelAgent:
    """An AI seat that plays by Monte Carlo tree search against the pixel judge."""

    pixels: int = 6  # which judge the search consults (4 or 6)
    rollouts: int = 1000
    seed: int = 0
    move_delay: float = 2.0  # seconds between the turn starting and the search starting: a watchable pace
    leaf: str = "judge"
    value: str = "win"

    def __post_init__(self):
        problems = []
        if self.pixels not in JUDGE_PIXELS or isinstance(self.pixels, bool):
            problems.append(f"pixels must be one of {', '.join(map(str, JUDGE_PIXELS))} (the trained judges)")
        if isinstance(self.rollouts, bool) or not isinstance(self.rollouts, int) or not 1 <= self.rollouts <= 100_000:
            problems.append("rollouts must be a whole number from 1 to 100000")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            problems.append("seed must be a whole number")
        if (
            isinstance(self.move_delay, bool)
            or not isinstance(self.move_delay, (int, float))
            or not 0 <= self.move_delay <= 600
        ):
            problems.append("move_delay must be between 0 and 600 seconds")
        if self.leaf not in LEAF_MODES:
            problems.append(f"leaf must be one of {', '.join(LEAF_MODES)}")
        if self.value not in VALUE_MODES:
            problems.append(f"value must be one of {', '.join(VALUE_MODES)}")
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def from_dict(cls, data) -> "PixelAgent":
        if not isinstance(data, dict) or data.get("backend") != PIXEL_BACKEND:
            raise ValueError(f"a pixel debater's agent is a mapping with backend {PIXEL_BACKEND!r}")
        unknown = set(data) - {"backend", *cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown pixel agent settings: {', '.join(sorted(unknown))}")
        return cls(**{k: v for k, v in data.items() if k != "backend"})

    def to_dict(self) -> dict:
        return {"backend": PIXEL_BACKEND, **asdict(self)}


def is_pixel_agent(agent) -> bool:
    return isinstance(agent, dict) and agent.get("backend") == PIXEL_BACKEND


# ---------------------------------------------------------------------------------------------
# Debates


def create_pixel_debate(
    mode: str,
    image_index: int,
    *,
    lie: int | None = None,
    precommit: bool = True,
    pixels: int = 6,
    honest_first: bool = True,
    humans=(),
    human_side: str | None = None,
    judge=None,
    observers=(),
    rollouts: int = 1000,
    seed: int = 0,
    move_delay: float = 2.0,
    rounds: int = 4,
    turn_seconds: int | None = None,
    created_by=None,
    start_when_judge_opens: bool = False,
) -> Debate:
    """An image debate on MNIST test image `image_index`.

    mode: ai_vs_ai (two tree search debaters, the paper's game), human_vs_ai (one person against a
    tree search debater, the paper's game) or human_vs_human (the paper's human prototype: `rounds`
    statements each, one pixel each). Seat A speaks first: the honest debater when honest_first.
    Sides: `human_side` ("honest" or "liar") for human_vs_ai; human_vs_human assigns the two
    humans to sides at random (seeded by `seed`), so that one of them must lie. `lie` is the
    digit the dishonest debater claims (without precommit the judge still picks among all ten).
    """
    if mode not in MODES:
        raise Refused("bad_mode", f"mode must be one of {', '.join(MODES)} (got {mode!r})")
    humans = list(humans)
    wanted = {"ai_vs_ai": 0, "human_vs_ai": 1, "human_vs_human": 2}[mode]
    if len(humans) != wanted:
        raise Refused("bad_humans", f"{mode} needs {wanted} human debater{'s' if wanted != 1 else ''}")
    if lie is None:
        raise Refused("bad_lie", "say which digit the dishonest debater claims (lie)")
    question = image_question(image_index, lie, precommit)
    if mode == "human_vs_human":
        protocol = human_game_protocol(rounds, turn_seconds=turn_seconds)
    else:
        protocol = ai_game_protocol(pixels)
    honest_seat, liar_seat = ("A", "B") if honest_first else ("B", "A")
    people = _sides_of_humans(mode, humans, human_side, seed)
    agent_pixels = pixels if pixels in JUDGE_PIXELS else min(JUDGE_PIXELS, key=lambda p: (abs(p - pixels), p))
    agents = {}
    answers = {honest_seat: question.correct_index, liar_seat: question.answers.index(str(lie))}
    debaters = {}
    for side, seat in (("honest", honest_seat), ("liar", liar_seat)):
        debaters[seat] = (people.get(side), answers[seat])
        if people.get(side) is None:
            agents[seat] = PixelAgent(
                pixels=agent_pixels, rollouts=rollouts, seed=seed + (seat == "B"), move_delay=move_delay
            ).to_dict()
    with transaction.atomic():
        debate = services.create_debate(
            question,
            protocol,
            debaters,
            judge=judge,
            observers=observers,
            created_by=created_by,
            answer_order=list(range(len(question.answers))),
        )
        for seat, agent in agents.items():
            Participant.objects.filter(debate=debate, seat=seat).update(agent=agent)
        debate.provenance = {
            "code_version": provenance.code_version(),
            "pixel_debate": {
                "mode": mode,
                "image_index": image_index,
                "lie": lie,
                "precommit": precommit,
                "pixels": protocol.reveals_per_debater * 2,
                "honest_first": honest_first,
                "start_when_judge_opens": bool(start_when_judge_opens),
            },
        }
        debate.save(update_fields=["provenance"])
    return debate


def _sides_of_humans(mode: str, humans: list, human_side: str | None, seed: int) -> dict:
    if mode == "human_vs_ai":
        side = human_side or random.Random(seed).choice(SIDES)
        if side not in SIDES:
            raise Refused("bad_side", f"human_side must be honest or liar (got {human_side!r})")
        return {side: humans[0]}
    if mode == "human_vs_human":
        shuffled = list(humans)
        random.Random(seed).shuffle(shuffled)
        return dict(zip(SIDES, shuffled))
    return {}


def is_pixel_debate(debate: Debate) -> bool:
    return debate.question.kind == Question.KIND_IMAGE and debate.get_protocol().evidence == "pixels"


def revealed_pixels(debate: Debate) -> list[int]:
    """The pixels revealed so far, in order."""
    return [
        payload["reveal"]["pixel"]
        for payload in debate.turns.order_by("id").values_list("payload", flat=True)
        if (payload or {}).get("reveal")
    ]


def start_when_judge_opens(debate: Debate, viewer) -> list:
    """A scheduled image debate marked start_when_judge_opens starts when its judge opens the room.
    Returns the new events (the caller publishes them)."""
    marked = ((debate.provenance or {}).get("pixel_debate") or {}).get("start_when_judge_opens")
    if not marked or debate.status != Debate.SCHEDULED or getattr(viewer, "view", None) != "judge":
        return []
    try:
        return services.start_debate(debate.pk)
    except Refused:  # started a moment ago by someone else
        return []


# ---------------------------------------------------------------------------------------------
# The judge networks


def judge_file(pixels: int) -> Path:
    """The judge weights for `pixels` (4 or 6): DEBATELAB_PIXEL_JUDGE_<N>PX if set, else the
    shipped file. Raises JudgeMissing, saying how to get one, when there is none."""
    from .pixel.judges import weights_path

    if pixels not in JUDGE_PIXELS:
        raise JudgeMissing(f"there are pixel judges for {' and '.join(map(str, JUDGE_PIXELS))} pixels, not {pixels}")
    override = os.environ.get(JUDGE_OVERRIDE_ENV.format(pixels=pixels))
    path = Path(override) if override else weights_path(pixels)
    if not path.exists():
        if override:
            raise JudgeMissing(f"{JUDGE_OVERRIDE_ENV.format(pixels=pixels)} names {path}, which does not exist")
        raise JudgeMissing(
            f"the {pixels}-pixel judge is not trained yet: {path} is missing. Train it with "
            f"`python -m debates.pixel train-judge --pixels {pixels}`, or point "
            f"{JUDGE_OVERRIDE_ENV.format(pixels=pixels)} at a weights file or training checkpoint"
        )
    return path


_evaluators: dict = {}
_evaluators_lock = threading.Lock()


def judge_evaluator(pixels: int, device: str = "cpu"):
    """The judge for `pixels` as a batched evaluator (debates.pixel.evaluator.JudgeEvaluator),
    loaded once per process and file version."""
    path = judge_file(pixels)
    key = (pixels, str(path.resolve()), path.stat().st_mtime_ns, device)
    with _evaluators_lock:
        if key not in _evaluators:
            _evaluators[key] = _load_evaluator(pixels, path, device)
        return _evaluators[key]


def _load_evaluator(pixels: int, path: Path, device: str):
    import torch

    torch.set_num_threads(int(os.environ.get(TORCH_THREADS_ENV) or 1))

    from .pixel.evaluator import JudgeEvaluator
    from .pixel.judge_net import PixelJudge
    from .pixel.judges import weights_path

    # On the CPU the sparse pass (the same network, work proportional to the revealed pixels) is
    # about twice as fast; on a GPU the plain pass is (bench/pixel_search.py measures both).
    options = {"device": device, "sparse": device == "cpu"}
    if path == weights_path(pixels):
        return JudgeEvaluator.shipped(pixels, **options)
    state = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "model" in state:  # a training checkpoint
        return JudgeEvaluator.from_checkpoint(path, **options)
    model = PixelJudge()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return JudgeEvaluator(model, **options)


def judge_identity(pixels: int) -> dict:
    """Which judge network decides: its name, file, SHA-256 and (shipped judges) metadata."""
    path = judge_file(pixels)
    identity = {
        "name": f"pixel-judge-{pixels}px",
        "pixels": pixels,
        "weights_file": path.name,
        "weights_sha256": _sha256(str(path.resolve()), path.stat().st_mtime_ns),
        "override": bool(os.environ.get(JUDGE_OVERRIDE_ENV.format(pixels=pixels))),
    }
    metadata = path.with_suffix(".json")
    if not identity["override"] and metadata.exists():
        recorded = json.loads(metadata.read_text())
        identity["metadata"] = {
            k: recorded.get(k)
            for k in ("training_command", "seed", "batches", "weights_dtype", "test_accuracy_random_nonzero_masks")
            if k in recorded
        }
    return identity


@functools.lru_cache(maxsize=16)
def _sha256(path: str, _mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# Games played elsewhere (self-play), stored as finished debates


def reveal_text(pixel: int) -> str:
    """What a tree search debater says with its move (the reveal itself is the evidence)."""
    return f"I reveal the pixel at row {pixel // SIDE + 1}, column {pixel % SIDE + 1}."


@dataclass
class FinishedGame:
    """A pixel game played elsewhere (self-play), to be stored as a debate.

    seats: {seat: (answer_index, agent dict)}; reveals: [(seat, pixel)] in order."""

    source: str
    external_id: str
    question: Question
    protocol: Protocol
    seats: dict
    reveals: list
    provenance: dict


def record_finished_games(games: list[FinishedGame]) -> list[Debate]:
    """Stores finished pixel games as debates awaiting their verdicts, in a few bulk statements
    inside the caller's transaction. Every reveal goes through the protocol engine (Refused if a
    game broke a rule; nothing is stored then). Games already stored (same source and
    external_id) are skipped; returns the new debates in the order given."""
    stored = set(
        Debate.objects.filter(external_id__in=[g.external_id for g in games]).values_list("source", "external_id")
    )
    games = [g for g in games if (g.source, g.external_id) not in stored]
    replays = [_replay(g) for g in games]
    now = timezone.now()
    debates = [
        Debate(
            question=g.question,
            protocol=g.protocol.to_dict(),
            status=Debate.AWAITING_VERDICT,
            answer_order=list(range(len(g.question.answers))),
            source=g.source,
            external_id=g.external_id,
            provenance=g.provenance,
            started_at=now,
            ended_at=now,
        )
        for g in games
    ]
    numbered = [e for d, (_, events) in zip(debates, replays) for e in services.number_events(d, events)]
    Debate.objects.bulk_create(debates)
    Participant.objects.bulk_create(
        [
            Participant(debate=d, seat=seat, answer_index=answer, agent=agent)
            for d, g in zip(debates, games)
            for seat, (answer, agent) in g.seats.items()
        ]
    )
    Turn.objects.bulk_create([Turn(debate=d, **turn) for d, (turns, _) in zip(debates, replays) for turn in turns])
    DebateEvent.objects.bulk_create(numbered)
    return debates


def _replay(game: FinishedGame) -> tuple[list[dict], list[Event]]:
    """The game's turns (as Turn fields) and events, checked by the protocol engine."""
    question, protocol = game.question, game.protocol
    engine = DebateEngine(protocol, len(question.answers), question.revealable_pixels())
    events = [Event("debate_started", EVERYONE, {})]
    turns = []
    for seat, pixel in game.reveals:
        round_index = engine.round_index
        action = Action(seat=seat, kind="speech", text=reveal_text(pixel), reveal=int(pixel))
        shown = {"pixel": int(pixel), "value": question.pixel_value(int(pixel))}
        events += [
            Event(e.kind, e.audience, dict(e.data, reveal=shown)) if "reveal" in e.data else e
            for e in engine.apply(action)
        ]
        turns.append(
            {
                "round_index": round_index,
                "seat": seat,
                "kind": "speech",
                "text": action.text,
                "payload": {"reveal": shown},
                "client_id": f"pixel-{round_index}-{seat}",
            }
        )
    if not engine.finished:
        raise Refused(
            "game_unfinished",
            f"the game stopped after {len(game.reveals)} reveals; the protocol needs "
            f"{protocol.reveals_per_debater * len(protocol.debaters)}",
        )
    return turns, events
