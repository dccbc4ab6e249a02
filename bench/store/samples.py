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

class SampleError(ValueError):
    """A sample file that cannot be used (truncated, garbage, object arrays, wrong shapes, a
    digest other than the recorded one): one line naming the file."""


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


def points_image(points: np.ndarray, centres: np.ndarray | None = None,
                 size: int = 160) -> np.ndarray:
    """2-D points as a size x size RGB float image in [0, 1]: their log density (dark) over the
    square that holds the mode centres (or the points), with each centre as a red +. Shared by
    the report's sample sheets and the TensorBoard writer."""
    pts = np.asarray(points, dtype=float)
    centres = np.asarray(centres if centres is not None else pts[:0], dtype=float)
    ref = centres if len(centres) else pts
    lim = 1.25 * float(np.abs(ref).max()) if len(ref) else 1.0
    hist, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=size, range=[[-lim, lim], [-lim, lim]])
    shade = 1 - np.clip(np.log1p(hist) / max(np.log1p(hist).max(), 1e-9), 0, 1) * 0.9
    rgb = np.repeat(shade[::-1, :, None], 3, axis=2)
    for x, y in centres:
        i = min(max(int((lim - y) / (2 * lim) * size), 0), size - 1)
        j = min(max(int((x + lim) / (2 * lim) * size), 0), size - 1)
        rgb[max(i - 2, 0):i + 3, j, :] = (0.85, 0.1, 0.1)
        rgb[i, max(j - 2, 0):j + 3, :] = (0.85, 0.1, 0.1)
    return rgb


def save_grid_png(images: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = tile_images(images)
    if grid.shape[2] == 1:
        plt.imsave(path, grid[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        plt.imsave(path, grid)


def read_samples(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a sample file, checked: its sha256 against the store's record of it, no
    pickled objects (`allow_pickle=False`), `images` uint8 [N, C, H, W] with C in (1, 3) or
    `points` finite float [N, 2] (and `centres` [K, 2]). SampleError (one line) otherwise."""
    import zipfile

    from bench.store import integrity

    path = Path(path)
    try:
        integrity.verify(path)
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except integrity.DigestMismatch as exc:
        raise SampleError(f"sample file {exc}") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        reason = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise SampleError(f"cannot read sample file {path}: {reason}") from None
    if "images" in data:
        images = data["images"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3) \
                or 0 in images.shape:
            raise SampleError(f"sample file {path}: `images` is {images.dtype} "
                              f"{list(images.shape)}, not uint8 [N, 1 or 3, H, W]")
        return {"images": images}
    if "points" in data:
        out = {}
        for key in ("points", "centres"):
            if key not in data:
                continue
            a = data[key]
            if a.dtype.kind not in "fiu" or a.ndim != 2 or a.shape[1] != 2 \
                    or not np.isfinite(a).all():
                raise SampleError(f"sample file {path}: `{key}` is {a.dtype} {list(a.shape)}, "
                                  f"not finite numbers [N, 2]")
            out[key] = a.astype(float)
        return out
    raise SampleError(f"sample file {path} holds neither `images` nor `points` "
                      f"({', '.join(data) or 'nothing'})")
