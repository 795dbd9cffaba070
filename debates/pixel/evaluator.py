"""The pixel judge network behind the evaluator interface the tree search uses.

An evaluator is any callable taking judge inputs, a float32 array (B, 2, 28, 28) of masks and
values / 255 (see game.batch_judge_planes), and returning the judge's logits, (B, 10). This is the
only module of the pixel debate that imports torch.
"""
import numpy as np
import torch

from .judge_net import PixelJudge

DEVICES = ("cpu", "cuda")


class JudgeEvaluator:
    """A frozen PixelJudge on `device`, evaluated without gradients, in chunks of at most `max_batch`."""

    def __init__(self, model: PixelJudge, device: str = "cpu", max_batch: int = 1024):
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.device = device
        self.max_batch = max_batch
        self.model = model.to(device).eval()
        self.calls = 0
        self.evaluations = 0

    @classmethod
    def shipped(cls, pixels: int, device: str = "cpu", **options) -> "JudgeEvaluator":
        """The trained judge shipped in the repository for `pixels` (4 or 6)."""
        from .judges import load_judge

        return cls(load_judge(pixels), device=device, **options)

    @classmethod
    def from_checkpoint(cls, path, device: str = "cpu", **options) -> "JudgeEvaluator":
        """A training checkpoint (read only), e.g. a judge still in training."""
        model = PixelJudge()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=False)["model"])
        return cls(model, device=device, **options)

    @torch.inference_mode()
    def __call__(self, planes: np.ndarray) -> np.ndarray:
        planes = np.asarray(planes, dtype=np.float32)
        if planes.ndim != 4 or planes.shape[1:] != (2, 28, 28):
            raise ValueError(f"judge inputs must have shape (B, 2, 28, 28), got {planes.shape}")
        self.calls += 1
        self.evaluations += len(planes)
        chunks = []
        for start in range(0, len(planes), self.max_batch):
            batch = torch.from_numpy(planes[start:start + self.max_batch]).to(self.device)
            chunks.append(self.model(batch).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.empty((0, 10), dtype=np.float32)
