"""Shared by the pixel platform tests: small judge networks that stand in for the trained ones.

The trained judges take an hour or more to train, so the platform tests use untrained PixelJudge
networks with fixed seeds (the real architecture, arbitrary but deterministic verdicts). They are
named through DEBATELAB_PIXEL_JUDGE_<N>PX, set when this module is imported (at collection, before
any daphne or Celery subprocess starts, so those use them too) and written by `tiny_judges`.
"""

import os
import tempfile
from pathlib import Path

import numpy as np

TINY_DIR = Path(tempfile.gettempdir()) / f"debatelab-tiny-judges-{os.getpid()}"
PIXELS = (4, 6)


def tiny_judge_path(pixels: int) -> Path:
    return TINY_DIR / f"judge-{pixels}px.pt"


for _pixels in PIXELS:
    os.environ[f"DEBATELAB_PIXEL_JUDGE_{_pixels}PX"] = str(tiny_judge_path(_pixels))


def write_tiny_judges() -> None:
    import torch

    from debates.pixel.judge_net import PixelJudge

    TINY_DIR.mkdir(parents=True, exist_ok=True)
    for pixels in PIXELS:
        path = tiny_judge_path(pixels)
        if not path.exists():
            torch.manual_seed(1000 + pixels)
            partial = path.with_suffix(".partial")
            torch.save(PixelJudge().state_dict(), partial)
            partial.rename(path)


def tiny_logits(pixels: int, image, mask) -> np.ndarray:
    """The tiny judge's logits on `mask`, computed here, independently of the platform's loader."""
    import torch

    from debates.pixel.game import judge_planes
    from debates.pixel.judge_net import PixelJudge

    model = PixelJudge()
    model.load_state_dict(torch.load(tiny_judge_path(pixels), weights_only=True))
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(judge_planes(np.asarray(image, dtype=np.uint8), mask)[None])).numpy()[0]


def image_rows_in(blob) -> list:
    """Every list of 28 whole numbers anywhere in a JSON value (a row of an image)."""
    found = []
    if isinstance(blob, dict):
        for value in blob.values():
            found += image_rows_in(value)
    elif isinstance(blob, list):
        if len(blob) == 28 and all(isinstance(v, int) and not isinstance(v, bool) for v in blob):
            found.append(blob)
        for value in blob:
            found += image_rows_in(value)
    return found


def pixel_values_in(blob) -> set:
    """Every {"pixel": p, "value": v} anywhere in a JSON value, as (p, v)."""
    found = set()
    if isinstance(blob, dict):
        if set(blob) >= {"pixel", "value"}:
            found.add((blob["pixel"], blob["value"]))
        for value in blob.values():
            found |= pixel_values_in(value)
    elif isinstance(blob, list):
        for value in blob:
            found |= pixel_values_in(value)
    return found
