"""The trained pixel judges shipped in the repository, and how they are saved and loaded.

Weights are stored in float16 when that changes no verdict on the test set (checked at export),
else float32. Each judge has a JSON metadata file beside it.
"""

import hashlib
import json
import platform as host
from pathlib import Path

import numpy as np
import torch

from . import mnist
from .judge_net import PixelJudge, accuracy_on_random_masks, planes_from_masks, random_nonzero_masks

JUDGES_DIR = Path(__file__).resolve().parent / "judges"
PAPER_ACCURACY = {6: 0.594, 4: 0.482}


def weights_path(pixels: int) -> Path:
    return JUDGES_DIR / f"judge-{pixels}px.pt"


def metadata_path(pixels: int) -> Path:
    return JUDGES_DIR / f"judge-{pixels}px.json"


def checkpoint_path(pixels: int, seed: int) -> Path:
    return mnist.data_dir() / "pixel-training" / f"judge-{pixels}px-seed{seed}.ckpt"


def load_judge(pixels: int, device: str = "cpu") -> PixelJudge:
    path = weights_path(pixels)
    if not path.exists():
        raise FileNotFoundError(
            f"no trained {pixels}-pixel judge at {path}: run `python -m debates.pixel train-judge --pixels {pixels}`"
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model = PixelJudge()
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model.to(device).eval()


@torch.no_grad()
def _test_verdicts(model: PixelJudge, images, pixels: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    flat = torch.from_numpy(images.reshape(len(images), -1).astype(np.int64))
    verdicts = []
    for start in range(0, len(flat), 1000):
        batch = flat[start : start + 1000]
        verdicts.append(model(planes_from_masks(batch, random_nonzero_masks(batch, pixels, generator))).argmax(1))
    return torch.cat(verdicts)


def _smallest_faithful_state(model: PixelJudge, pixels: int) -> tuple[dict, str]:
    images, _ = mnist.load("test", mnist.fetch())
    half = {k: v.half() for k, v in model.state_dict().items()}
    reloaded = PixelJudge()
    reloaded.load_state_dict({k: v.float() for k, v in half.items()})
    reloaded.eval()
    for seed in (0, 1):
        if not torch.equal(_test_verdicts(model, images, pixels, seed), _test_verdicts(reloaded, images, pixels, seed)):
            return model.state_dict(), "float32"
    return half, "float16"


def _device_name(device: str) -> str:
    if device == "cuda":
        return f"{torch.cuda.get_device_name()} (cuda)"
    return f"{host.machine()} cpu"


def export_judge(model: PixelJudge, run, command: str, seconds: float, device: str = "cpu") -> Path:
    model.eval()
    state, dtype = _smallest_faithful_state(model, run.pixels)
    JUDGES_DIR.mkdir(parents=True, exist_ok=True)
    path = weights_path(run.pixels)
    torch.save(state, path)
    metadata = {
        "pixels": run.pixels,
        "training_command": command,
        "seed": run.seed,
        "batches": run.batches,
        "batch_size": run.batch_size,
        "learning_rate": run.learning_rate,
        "optimiser": "Adam",
        "weights_dtype": dtype,
        "weights_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "data_sha256": dict(mnist.SHA256),
        "training_seconds": round(seconds, 1),
        "trained_on": f"{_device_name(device)}, torch {torch.__version__}",
        "paper_test_accuracy": PAPER_ACCURACY[run.pixels],
    }
    metadata_path(run.pixels).write_text(json.dumps(metadata, indent=2) + "\n")
    return path


def evaluate_and_record(pixels: int, mask_seeds: list[int], write: bool = True) -> dict:
    model = load_judge(pixels)
    images, labels = mnist.load("test", mnist.fetch())
    per_seed = {str(s): accuracy_on_random_masks(model, images, labels, pixels, seed=s) for s in mask_seeds}
    values = np.array(list(per_seed.values()))
    result = {
        "images": int(len(images)),
        "mask_seeds": mask_seeds,
        "accuracy_per_seed": per_seed,
        "accuracy_mean": float(values.mean()),
        "accuracy_std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "paper": PAPER_ACCURACY[pixels],
        "command": f"python -m debates.pixel evaluate-judge --pixels {pixels}",
    }
    if write:
        path = metadata_path(pixels)
        metadata = json.loads(path.read_text())
        metadata["test_accuracy_random_nonzero_masks"] = result
        path.write_text(json.dumps(metadata, indent=2) + "\n")
    return result
