"""The pixel judge network behind the evaluator interface the tree search uses.

An evaluator is any callable taking judge inputs, a float32 array (B, 2, 28, 28) of masks and
values / 255 (see game.batch_judge_planes), and returning the judge's logits, (B, 10). This is the
only module of the pixel debate that imports torch.

`JudgeEvaluator(model, sparse=True)` computes the same network in a way that uses how few pixels
the judge sees (see SparseJudge); its logits match the plain forward pass to float rounding
(about 1e-6), and it is about twice as fast on a CPU in batches of 16 to 64.
"""

import numpy as np
import torch

from .board import PIXEL_COUNT, SIDE
from .judge_net import PixelJudge

DEVICES = ("cpu", "cuda")
SPARSE_CHUNK = 64


class JudgeEvaluator:
    """A frozen PixelJudge on `device`, evaluated without gradients, in chunks of at most `max_batch`."""

    def __init__(self, model: PixelJudge, device: str = "cpu", max_batch: int = 1024, sparse: bool = False):
        if device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but torch sees no CUDA device")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.device = device
        self.model = model.to(device).eval()
        self.sparse = sparse
        # The sparse pass writes a (positions x 25 x 64) intermediate: past ~64 positions memory, not
        # arithmetic, limits it, so it runs in chunks of 64.
        self.max_batch = min(max_batch, SPARSE_CHUNK) if sparse else max_batch
        self.forward = SparseJudge(self.model) if sparse else self.model
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
        if planes.ndim != 4 or planes.shape[1:] != (2, SIDE, SIDE):
            raise ValueError(f"judge inputs must have shape (B, 2, {SIDE}, {SIDE}), got {planes.shape}")
        self.calls += 1
        self.evaluations += len(planes)
        chunks = []
        for start in range(0, len(planes), self.max_batch):
            batch = torch.from_numpy(planes[start : start + self.max_batch]).to(self.device)
            chunks.append(self.forward(batch).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.empty((0, 10), dtype=np.float32)


class SparseJudge:
    """PixelJudge's forward pass for inputs with only a few revealed pixels, equal up to rounding.

    With no pixel revealed every first-layer output is its bias, so after ReLU and pooling the
    first layer's map is a constant background; a revealed pixel changes it only in the 3x3 pooled
    cells around it. The second convolution is linear, so its output is a precomputed background
    response plus the convolution of those few changed cells. The rest (ReLU, pooling, the dense
    layers) is computed as usual. Cost: a handful of cells per pixel instead of the whole image.
    """

    def __init__(self, model: PixelJudge):
        conv1, conv2 = model.features[0], model.features[3]
        dense1, dense2 = model.classifier[1], model.classifier[4]
        device = conv1.weight.device
        with torch.no_grad():
            # Kernels flipped so that offset (i, j) of a pixel's 5x5 footprint is plain indexing.
            k1 = torch.flip(conv1.weight, dims=(2, 3))
            self.footprint_mask = k1[:, 0].reshape(32, 25).T.contiguous()  # (25 offsets, 32 channels)
            self.footprint_value = k1[:, 1].reshape(32, 25).T.contiguous()
            self.bias1 = conv1.bias.clone()
            self.background1 = torch.relu(self.bias1)  # every pooled cell no pixel reaches
            k2 = torch.flip(conv2.weight, dims=(2, 3))
            self.spread2 = k2.permute(1, 2, 3, 0).reshape(32, 25 * 64).contiguous()  # cell change -> 5x5x64
            background = self.background1.view(1, 32, 1, 1).expand(1, 32, 14, 14).contiguous()
            response = conv2(background)[0].permute(1, 2, 0)  # (14, 14, 64), conv2's bias included
            self.background2 = torch.zeros(18, 18, 64, device=device)  # padded by 2 on every side
            self.background2[2:16, 2:16] = response
            self.background2 = self.background2.view(1, 18 * 18, 64)
            # dense1 reads features in (channel, row, column) order; ours are (row, column, channel)
            self.weight1 = dense1.weight.view(1024, 64, 7, 7).permute(2, 3, 1, 0).reshape(3136, 1024).contiguous()
            self.bias_dense1 = dense1.bias.clone()
        self.dense2 = dense2
        offsets = torch.arange(5, device=device)
        self.offset_row, self.offset_column = offsets.repeat_interleave(5), offsets.repeat(5)
        near = torch.arange(3, device=device)
        self.near_row, self.near_column = near.repeat_interleave(3), near.repeat(3)
        corner = torch.arange(2, device=device)
        self.corner_row, self.corner_column = corner.repeat_interleave(2), corner.repeat(2)

    @torch.no_grad()
    def __call__(self, planes: torch.Tensor) -> torch.Tensor:
        count = planes.shape[0]
        image, pixel = planes[:, 0].reshape(count, PIXEL_COUNT).nonzero(as_tuple=True)
        value = planes[:, 1].reshape(count, PIXEL_COUNT)[image, pixel]
        row, column = pixel // SIDE, pixel % SIDE

        # First layer, pre-activation, on a 32x32 grid per image (the 28x28 image padded by 2),
        # written only where a pixel's 5x5 footprint falls or a changed cell reads.
        footprints = self.footprint_mask + value[:, None, None] * self.footprint_value
        written = (
            (image[:, None] * 32 + row[:, None] + self.offset_row) * 32 + column[:, None] + self.offset_column
        ).reshape(-1)
        cell_row = torch.div(row - 2, 2, rounding_mode="floor")[:, None] + self.near_row
        cell_column = torch.div(column - 2, 2, rounding_mode="floor")[:, None] + self.near_column
        inside = (cell_row >= 0) & (cell_row < 14) & (cell_column >= 0) & (cell_column < 14)
        changed = torch.zeros(count, 196, dtype=torch.bool, device=planes.device)
        changed[image[:, None].expand_as(cell_row)[inside], (cell_row * 14 + cell_column)[inside]] = True
        cell_image, cell = changed.nonzero(as_tuple=True)
        cell_row, cell_column = cell // 14, cell % 14
        read = (
            (cell_image[:, None] * 32 + cell_row[:, None] * 2 + self.corner_row + 2) * 32
            + cell_column[:, None] * 2
            + self.corner_column
            + 2
        )
        layer1 = torch.empty(count * 1024, 32, device=planes.device)
        layer1[read.reshape(-1)] = 0.0
        layer1[written] = 0.0
        layer1.index_add_(0, written, footprints.reshape(-1, 32))
        corners = layer1[read]
        pooled = torch.maximum(torch.maximum(corners[:, 0], corners[:, 1]), torch.maximum(corners[:, 2], corners[:, 3]))
        change1 = torch.relu(pooled + self.bias1) - self.background1  # (cells, 32)

        # Second layer: background response plus the spread of each changed cell.
        spread = (change1 @ self.spread2).view(-1, 64)
        targets = (
            (cell_image[:, None] * 18 + cell_row[:, None] + self.offset_row) * 18
            + cell_column[:, None]
            + self.offset_column
        ).reshape(-1)
        layer2 = self.background2.repeat(count, 1, 1).view(count * 324, 64)  # a copy: index_add_ writes to it
        layer2.index_add_(0, targets, spread)
        layer2 = layer2.view(count, 18, 18, 64)[:, 2:16, 2:16]
        features = torch.relu(
            torch.maximum(
                torch.maximum(layer2[:, 0::2, 0::2], layer2[:, 0::2, 1::2]),
                torch.maximum(layer2[:, 1::2, 0::2], layer2[:, 1::2, 1::2]),
            )
        )
        hidden = torch.relu(torch.addmm(self.bias_dense1, features.reshape(count, 3136), self.weight1))
        return self.dense2(hidden)
