"""2-D Gaussian-mixture toy sets: ring8 (PacGAN) and grid25, with modes inside [-1, 1]."""
from __future__ import annotations

import math

import numpy as np
import torch

from .base import Dataset
from .ops import rng_for

TRAIN_SIZE = 50_000
TEST_SIZE = 2_500


def _ring8() -> tuple[np.ndarray, float]:
    angles = 2 * math.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1), 0.01


def _grid25() -> tuple[np.ndarray, float]:
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    centers = np.array([(x, y) for x in ticks for y in ticks])
    return centers / 4.0, 0.05 / 4.0  # scale everything by 1/4 so modes lie in [-1, 1]


_MIXTURES = {"ring8": _ring8, "grid25": _grid25}


def _sample(centers: np.ndarray, sigma: float, n: int, rng: np.random.Generator) -> torch.Tensor:
    modes = rng.integers(0, len(centers), size=n)  # each sample picks a mode uniformly
    x = centers[modes] + sigma * rng.standard_normal((n, 2))
    return torch.from_numpy(x.astype(np.float32))


def load_mixture(name: str, seed: int) -> Dataset:
    centers, sigma = _MIXTURES[name]()
    return Dataset(
        name=name,
        kind="2d",
        shape=(2,),
        train=_sample(centers, sigma, TRAIN_SIZE, rng_for(seed, f"{name}/train")),
        test=_sample(centers, sigma, TEST_SIZE, rng_for(seed, f"{name}/test")),
        train_labels=None,
        test_labels=None,
        num_classes=None,
        num_modes=len(centers),
        centers=torch.from_numpy(centers.astype(np.float32)),
        sigma=float(sigma),
    )
