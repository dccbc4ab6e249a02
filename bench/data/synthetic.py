"""2-D Gaussian-mixture toy sets: ring8 (PacGAN) and grid25, with modes inside [-1, 1]; and
PacGAN's own two sets at their own scale and size, ring8-pacgan and grid25-pacgan.

PacGAN's data (github.com/fjxmlzn/PacGAN, `synthetic_data_experiments/2DRing_GAN&PacGAN/config.py`
and `2DGrid_GAN&PacGAN/config.py`): ring = 8 modes at (cos 2 pi k/8, sin 2 pi k/8), sd 0.01;
grid = 25 modes at {-4, -2, 0, 2, 4}^2, sd 0.05; uniform priors; `num_sample` = 100,000 training
samples drawn once. The suite's ring8 has the same modes with a 50,000-sample training set; its
grid25 is PacGAN's grid scaled by 1/4 (centres and sd), which leaves the mode metrics unchanged
but not training (initial scale, Adam step sizes). The -pacgan sets keep PacGAN's coordinates
and its 100,000 training samples."""
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


def _grid25_pacgan() -> tuple[np.ndarray, float]:
    ticks = np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    return np.array([(x, y) for x in ticks for y in ticks]), 0.05


_MIXTURES = {"ring8": _ring8, "grid25": _grid25, "ring8-pacgan": _ring8,
             "grid25-pacgan": _grid25_pacgan}
PACGAN_TRAIN_SIZE = 100_000  # PacGAN's config: num_sample
_TRAIN_SIZES = {"ring8-pacgan": PACGAN_TRAIN_SIZE, "grid25-pacgan": PACGAN_TRAIN_SIZE}


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
        train=_sample(centers, sigma, _TRAIN_SIZES.get(name, TRAIN_SIZE), rng_for(seed, f"{name}/train")),
        test=_sample(centers, sigma, TEST_SIZE, rng_for(seed, f"{name}/test")),
        train_labels=None,
        test_labels=None,
        num_classes=None,
        num_modes=len(centers),
        centers=torch.from_numpy(centers.astype(np.float32)),
        sigma=float(sigma),
    )
