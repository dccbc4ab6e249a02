"""Stacked sets (Stacked-MNIST style): three random single-channel images as the RGB channels."""
from __future__ import annotations

import torch

from .base import Dataset
from .ops import rng_for

TRAIN_SIZE = 50_000
TEST_SIZE = 10_000


def stack_channels(images: torch.Tensor, labels: torch.Tensor, n: int, rng) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw n x 3 independent indices; return images ``[n, 3, H, W]`` and labels ``[n, 3]``."""
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"stack_channels expects [M, 1, H, W] images, got {tuple(images.shape)}")
    idx = torch.from_numpy(rng.integers(0, len(images), size=(n, 3)))
    x = images[:, 0][idx]  # [n, 3, H, W]; each channel is bit-identical to a source image
    return x.contiguous(), labels[idx].contiguous()


def make_stacked(name: str, base: Dataset, seed: int) -> Dataset:
    """Train channels come from ``base.train``, test channels from ``base.test``."""
    train, train_labels = stack_channels(base.train, base.train_labels, TRAIN_SIZE, rng_for(seed, f"{name}/train"))
    test, test_labels = stack_channels(base.test, base.test_labels, TEST_SIZE, rng_for(seed, f"{name}/test"))
    return Dataset(
        name=name,
        kind="image",
        shape=(3, *base.shape[1:]),
        train=train,
        test=test,
        train_labels=train_labels,
        test_labels=test_labels,
        num_classes=base.num_classes,
        num_modes=base.num_classes**3,
    )
