"""The per-cell sample file, written when a cell is scored so reports need neither torch nor a
checkpoint: `cells/<id>/samples.npz` holds

- 2-D data: `points` [2500, 2], the very points the metrics were computed on (drawn with the
  scorer's seed and batch size), and `centres` [K, 2], the mixture's mode centres;
- images: `images` uint8 [64, C, H, W], the first samples of the scorer's fixed-seed stream, and
  `samples.png` beside it, a grid of them.

This module is the format and is torch-free (the report tiles images with it); drawing the
samples and writing the file is `bench.train.samples.write_samples`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

SAMPLE_FILE = "samples.npz"
SAMPLE_PNG = "samples.png"
IMAGE_SAMPLES = 64


def tile_images(images: np.ndarray, scale: int = 2) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 [rows*(H+1)+1, cols*(W+1)+1, C] grid with 1-px white
    borders, upscaled `scale`x (nearest)."""
    n, c, h, w = images.shape
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    grid = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, c), 255, dtype=np.uint8)
    for i, img in enumerate(images):
        r, k = divmod(i, cols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + k * (w + 1):1 + k * (w + 1) + w] = \
            img.transpose(1, 2, 0)
    return grid.repeat(scale, 0).repeat(scale, 1)


def save_grid_png(images: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = tile_images(images)
    if grid.shape[2] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        plt.imsave(path, grid)
