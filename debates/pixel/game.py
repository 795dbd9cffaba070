"""The MNIST pixel debate game of Irving, Christiano & Amodei (2018), section 3.1.

Pure module (numpy only). Two debaters see a 28x28 digit; the honest one claims the true label, the
liar another. They take turns revealing one not-yet-revealed NONZERO pixel to a judge that sees
only the revealed pixels. After the pixel budget (6 or 4 reveals) the judge's logits decide.

Pixels are numbered 0..783 in row-major order (pixel = row * 28 + column).

Verdicts:
- precommit: both labels are stated before the first move; the side whose claimed label has the
  higher judge logit wins, the other 8 logits are ignored.
- no precommit: the judge takes the arg-max over all 10 logits; the honest side wins only if that
  is the true label, any wrong answer is a win for the liar (the liar need not name a lie).
Ties (the paper does not say): the honest side must win strictly. An exact tie between the true
label's logit and the lie's (precommit), or between the true label and the best wrong label (no
precommit), is a win for the liar, so ties never inflate the honest win rate.
"""

from dataclasses import dataclass, field

import numpy as np

from .board import PIXEL_COUNT, SIDE

LABELS = 10
HONEST = "honest"
LIAR = "liar"


class GameError(ValueError):
    """A game set up or played against the rules; nothing was changed."""


@dataclass(frozen=True, eq=False)
class DebateSetup:
    """Everything fixed before the first move of one pixel debate."""

    image: np.ndarray  # (28, 28) uint8
    true_label: int
    lie: int | None  # required with precommit; without precommit the liar wins with any wrong label
    pixels: int = 6  # total reveals, both players together
    honest_first: bool = True
    precommit: bool = True
    nonzero: np.ndarray = field(init=False, repr=False)  # sorted pixel numbers the debaters may reveal

    def __post_init__(self):
        image = np.asarray(self.image)
        if image.shape != (SIDE, SIDE):
            raise GameError(f"the image must be {SIDE}x{SIDE}, got shape {image.shape}")
        if image.dtype != np.uint8:
            raise GameError(f"the image must hold uint8 grey levels 0..255, got dtype {image.dtype}")
        if not _is_label(self.true_label):
            raise GameError(f"the true label must be an integer 0..9, got {self.true_label!r}")
        if self.lie is not None and not _is_label(self.lie):
            raise GameError(f"the lie must be an integer 0..9 or None, got {self.lie!r}")
        if self.lie is not None and self.lie == self.true_label:
            raise GameError(f"the lie must differ from the true label {self.true_label}")
        if self.precommit and self.lie is None:
            raise GameError("a precommit game needs the liar's claimed label (lie)")
        if not isinstance(self.pixels, (int, np.integer)) or isinstance(self.pixels, bool) or self.pixels < 1:
            raise GameError(f"the pixel budget must be a positive integer, got {self.pixels!r}")
        nonzero = np.flatnonzero(image.reshape(-1)).astype(np.int64)
        if len(nonzero) < self.pixels:
            raise GameError(f"the image has {len(nonzero)} nonzero pixels, fewer than the budget of {self.pixels}")
        image = image.copy()
        image.setflags(write=False)
        nonzero.setflags(write=False)
        object.__setattr__(self, "image", image)
        object.__setattr__(self, "true_label", int(self.true_label))
        object.__setattr__(self, "lie", None if self.lie is None else int(self.lie))
        object.__setattr__(self, "pixels", int(self.pixels))
        object.__setattr__(self, "nonzero", nonzero)

    def mover(self, ply: int) -> str:
        """Who reveals the pixel at position `ply` (0-based) of the game."""
        first, second = (HONEST, LIAR) if self.honest_first else (LIAR, HONEST)
        return first if ply % 2 == 0 else second

    def honest_wins(self, logits) -> bool:
        """The verdict on a final (or any) mask given the judge's 10 logits."""
        logits = np.asarray(logits)
        truth = logits[self.true_label]
        if self.precommit:
            return bool(truth > logits[self.lie])
        return bool(truth > np.delete(logits, self.true_label).max())

    def honest_margin(self, logits) -> float:
        """How far the honest side is ahead in judge logits (positive: honest wins, see the tie rule)."""
        logits = np.asarray(logits, dtype=np.float64)
        truth = logits[self.true_label]
        if self.precommit:
            return float(truth - logits[self.lie])
        return float(truth - np.delete(logits, self.true_label).max())


def _is_label(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(0 <= value < LABELS)


@dataclass(frozen=True)
class Reveal:
    pixel: int
    player: str  # HONEST or LIAR


@dataclass(frozen=True, eq=False)
class GameState:
    """A position: the setup and the pixels revealed so far, in order, with who revealed each."""

    setup: DebateSetup
    reveals: tuple[Reveal, ...] = ()

    @property
    def ply(self) -> int:
        return len(self.reveals)

    @property
    def is_over(self) -> bool:
        return self.ply >= self.setup.pixels

    @property
    def to_move(self) -> str | None:
        return None if self.is_over else self.setup.mover(self.ply)

    @property
    def revealed(self) -> tuple[int, ...]:
        return tuple(r.pixel for r in self.reveals)

    def legal_moves(self) -> np.ndarray:
        """The unrevealed nonzero pixels, ascending; empty once the game is over."""
        if self.is_over:
            return np.empty(0, dtype=np.int64)
        return unrevealed(self.setup.nonzero, self.revealed)

    def play(self, pixel: int) -> "GameState":
        """The position after the side to move reveals `pixel`. Raises GameError on an illegal move."""
        if self.is_over:
            raise GameError(f"the game is over: all {self.setup.pixels} pixels are revealed")
        if not isinstance(pixel, (int, np.integer)) or isinstance(pixel, bool) or not 0 <= pixel < PIXEL_COUNT:
            raise GameError(f"a pixel is an integer 0..{PIXEL_COUNT - 1}, got {pixel!r}")
        pixel = int(pixel)
        if pixel in self.revealed:
            raise GameError(f"pixel {pixel} is already revealed")
        if self.setup.image.reshape(-1)[pixel] == 0:
            raise GameError(
                f"pixel {pixel} (row {pixel // SIDE}, column {pixel % SIDE}) is black: "
                "only nonzero pixels may be revealed"
            )
        return GameState(self.setup, self.reveals + (Reveal(pixel, self.setup.mover(self.ply)),))

    def judge_planes(self) -> np.ndarray:
        return judge_planes(self.setup.image, self.revealed)

    def honest_wins(self, logits) -> bool:
        if not self.is_over:
            raise GameError(f"the game is not over: {self.ply} of {self.setup.pixels} pixels revealed")
        return self.setup.honest_wins(logits)

    def winner(self, logits) -> str:
        return HONEST if self.honest_wins(logits) else LIAR


def unrevealed(nonzero: np.ndarray, revealed) -> np.ndarray:
    if not revealed:
        return nonzero
    return nonzero[~np.isin(nonzero, np.fromiter(revealed, dtype=np.int64))]


def judge_planes(image: np.ndarray, revealed) -> np.ndarray:
    """The judge's input for one position: (2, 28, 28) float32, the {0,1} mask and the values / 255."""
    return batch_judge_planes(image, [tuple(revealed)])[0]


def batch_judge_planes(image: np.ndarray, revealed_sets) -> np.ndarray:
    """(B, 2, 28, 28) float32 judge inputs for several revealed sets of one image.

    The judge sees the set of revealed pixels only: neither who revealed a pixel nor when.
    """
    flat = np.asarray(image).reshape(-1).astype(np.float32) / 255.0
    planes = np.zeros((len(revealed_sets), 2, PIXEL_COUNT), dtype=np.float32)
    rows = [i for i, pixels in enumerate(revealed_sets) for _ in pixels]
    columns = [p for pixels in revealed_sets for p in pixels]
    if columns:
        planes[rows, 0, columns] = 1.0
        planes[rows, 1, columns] = flat[columns]
    return planes.reshape(len(revealed_sets), 2, SIDE, SIDE)
