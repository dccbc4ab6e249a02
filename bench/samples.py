"""The per-cell sample file, written when a cell is scored so reports need neither torch nor a
checkpoint: `cells/<id>/samples.npz` holds

- 2-D data: `points` [2500, 2], the very points the metrics were computed on (drawn with the
  scorer's seed and batch size), and `centres` [K, 2], the mixture's mode centres;
- images: `images` uint8 [64, C, H, W], the first samples of the scorer's fixed-seed stream, and
  `samples.png` beside it, a grid of them.

`tile_images` is torch-free (the report uses it); everything that samples imports torch lazily.
"""
from __future__ import annotations

import contextlib
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


def write_samples(sample_fn, dataset, folder: Path, eval_spec, device, n: int | None = None) -> Path:
    """Draw from `sample_fn(n, generator)` exactly as the scorer does (its seed and batch size)
    and write the sample file (and, for images, the PNG grid) into `folder`."""
    import torch

    from bench.metrics.evaluate import NUM_SAMPLES_2D, _draw
    from bench.metrics.images import to_uint8

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    kind = dataset.kind
    count = n or (NUM_SAMPLES_2D if kind == "2d" else IMAGE_SAMPLES)
    parts: list[torch.Tensor] = []
    # the scorer's own drawing loop, so the 2-D points are the ones the metrics saw
    _draw(sample_fn, count, dataset, eval_spec, torch.device(device),
          lambda x, _: parts.append(x.detach().to("cpu", torch.float32)))
    x = torch.cat(parts)
    path = folder / SAMPLE_FILE
    tmp = folder / f".{SAMPLE_FILE}.tmp.npz"
    try:
        if kind == "2d":
            np.savez(tmp, points=x.numpy(), centres=dataset.centers.cpu().numpy())
        else:
            images = to_uint8(x).numpy()
            np.savez(tmp, images=images)
            save_grid_png(images[:IMAGE_SAMPLES], folder / SAMPLE_PNG)
        tmp.replace(path)  # a reader never sees half a file
    except BaseException:
        with contextlib.suppress(OSError):  # no half-written temporary left; the old file stays
            tmp.unlink(missing_ok=True)
        raise
    return path
