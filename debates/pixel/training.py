"""Seeded, resumable training of the pixel judge exactly as the paper states it.

Adam 1e-4, batches of 128, a fresh random mask of k nonzero pixels each time an image is seen;
30,000 batches for k=6 and 50,000 for k=4. A checkpoint every `checkpoint_every` batches holds the
model, optimiser and random-generator states, so a stopped run resumes bit for bit.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .judge_net import PixelJudge, planes_from_masks, random_nonzero_masks

PAPER_BATCHES = {6: 30_000, 4: 50_000}


@dataclass
class TrainingRun:
    pixels: int
    batches: int
    seed: int = 0
    batch_size: int = 128
    learning_rate: float = 1e-4
    checkpoint_every: int = 1_000


def _fresh_state(run: TrainingRun, device: str = "cpu"):
    torch.manual_seed(run.seed)
    model = PixelJudge().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=run.learning_rate)
    generator = torch.Generator().manual_seed(run.seed)
    return model, optimiser, generator, 0


def _load_checkpoint(path: Path, run: TrainingRun, device: str = "cpu"):
    model, optimiser, generator, _ = _fresh_state(run, device)
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved["run"] != run.__dict__:
        raise ValueError(f"{path} was made by a different run: {saved['run']}")
    model.load_state_dict(saved["model"])
    optimiser.load_state_dict(saved["optimiser"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    if device == "cuda" and saved.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(saved["cuda_rng"])
    return model, optimiser, generator, saved["step"]


def _save_checkpoint(path: Path, run, model, optimiser, generator, step):
    tmp = path.with_suffix(".tmp")
    on_gpu = next(model.parameters()).is_cuda
    cuda_rng = torch.cuda.get_rng_state() if on_gpu else None
    torch.save(
        {
            "run": run.__dict__,
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": cuda_rng,
            "step": step,
        },
        tmp,
    )
    tmp.replace(path)


def train(
    run: TrainingRun,
    images: np.ndarray,
    labels: np.ndarray,
    checkpoint: Path,
    on_step=lambda step, loss: None,
    device: str = "cpu",
) -> PixelJudge:
    """Train (or resume from `checkpoint`) and return the model, on the CPU, in eval mode.

    Masks and batches are drawn on the CPU whatever `device` is, so a GPU run sees exactly the
    data a CPU run sees; only the arithmetic (and dropout's random stream) differs.
    """
    checkpoint = Path(checkpoint)
    if checkpoint.exists():
        model, optimiser, generator, step = _load_checkpoint(checkpoint, run, device)
    else:
        model, optimiser, generator, step = _fresh_state(run, device)
    flat = torch.from_numpy(images.reshape(len(images), -1).astype(np.uint8))
    targets = torch.from_numpy(labels.astype(np.int64))
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    while step < run.batches:
        # Batch indices depend only on the seed and the step, so resuming never changes the data order.
        order = torch.Generator().manual_seed(run.seed * 1_000_003 + step)
        index = torch.randint(len(flat), (run.batch_size,), generator=order)
        batch = flat[index]
        masks = random_nonzero_masks(batch, run.pixels, generator)
        planes = planes_from_masks(batch, masks).to(device, non_blocking=True)
        loss = loss_fn(model(planes), targets[index].to(device, non_blocking=True))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        on_step(step, loss.item())
        if step % run.checkpoint_every == 0 or step == run.batches:
            _save_checkpoint(checkpoint, run, model, optimiser, generator, step)
    return model.cpu().eval()
