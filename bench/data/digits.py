"""scikit-learn's bundled 8x8 digits, upsampled to 16x16, with a fixed stratified 80/20 split."""
from __future__ import annotations

import numpy as np
import torch

from .base import Dataset
from .ops import resize, rng_for

SPLIT_SEED = 20_240_601  # fixed: the reference split never depends on the run seed
TEST_FRACTION = 0.2


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train_idx, test_idx), taking round(test_fraction * n_c) of every class c for test."""
    rng = rng_for(seed, "digits/split")
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = int(round(test_fraction * len(idx)))
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def load_digits16() -> Dataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn: never downloads

    bunch = load_digits()
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32))  # [N, 8, 8], 0..16
    x = resize((images / 16.0 * 2.0 - 1.0).unsqueeze(1), 16)  # [N, 1, 16, 16] in [-1, 1]
    y = torch.from_numpy(np.asarray(bunch.target, dtype=np.int64))
    tr, te = stratified_split(y.numpy(), TEST_FRACTION, SPLIT_SEED)
    tr, te = torch.from_numpy(tr), torch.from_numpy(te)
    return Dataset(
        name="digits",
        kind="image",
        shape=(1, 16, 16),
        train=x[tr].contiguous(),
        test=x[te].contiguous(),
        train_labels=y[tr].contiguous(),
        test_labels=y[te].contiguous(),
        num_classes=10,
        num_modes=10,
    )
