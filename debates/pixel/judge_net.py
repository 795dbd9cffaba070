"""The sparse pixel judge of Irving et al. (2018): a CNN that sees only a few revealed pixels.

Pure module (torch + numpy, no Django). Input: two 28x28 planes, the {0,1} mask of revealed
pixels and the revealed values scaled to [0, 1]. Architecture: the TensorFlow layers tutorial.
"""

import numpy as np
import torch
from torch import nn

from .board import SIDE


class PixelJudge(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(2, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(7 * 7 * 64, 1024),
            nn.ReLU(),
            nn.Dropout(0.4),
            nn.Linear(1024, 10),
        )

    def forward(self, planes: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(planes))


def planes_from_masks(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """images (B, 784) uint8 or float in [0,255], masks (B, 784) {0,1} -> (B, 2, 28, 28) float."""
    masks = masks.float()
    values = images.float() / 255.0 * masks
    return torch.stack([masks, values], dim=1).view(-1, 2, SIDE, SIDE)


def random_nonzero_masks(images: torch.Tensor, pixels: int, generator: torch.Generator) -> torch.Tensor:
    """For each image (B, 784), a {0,1} mask of `pixels` distinct nonzero pixels chosen uniformly."""
    scores = torch.rand(images.shape, generator=generator)
    scores[images == 0] = -1.0
    chosen = scores.topk(pixels, dim=1).indices
    masks = torch.zeros(images.shape, dtype=torch.float32)
    masks.scatter_(1, chosen, 1.0)
    return masks


@torch.no_grad()
def accuracy_on_random_masks(
    model: PixelJudge, images: np.ndarray, labels: np.ndarray, pixels: int, seed: int, batch_size: int = 1000
) -> float:
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    flat = torch.from_numpy(images.reshape(len(images), -1).astype(np.int64))
    targets = torch.from_numpy(labels.astype(np.int64))
    correct = 0
    for start in range(0, len(flat), batch_size):
        batch = flat[start : start + batch_size]
        masks = random_nonzero_masks(batch, pixels, generator)
        logits = model(planes_from_masks(batch, masks))
        correct += int((logits.argmax(1) == targets[start : start + batch_size]).sum())
    return correct / len(flat)
