"""The sample sheets: a cell's samples as pixels (`sample_pixels`) and one contact sheet per
variant and dataset, drawn pixel for pixel (`sample_sheet`)."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from bench.report.figures.style import DPI, _save, _wrap
# torch-free parts
from bench.store.samples import IMAGE_SAMPLES, points_image, tile_images


def sample_pixels(sample_file: Path) -> np.ndarray | None:
    """A cell's samples as an image: an image grid (uint8, gray or RGB), or for 2-D points a
    160x160 density image of the points (dark) over the square that holds the mode centres
    (red +); None when the file holds neither. The file is checked (bench.store.samples.
    read_samples): a bad one raises SampleError, one line."""
    from bench.store.samples import read_samples

    data = read_samples(sample_file)
    if "images" in data:
        grid = tile_images(data["images"][:IMAGE_SAMPLES])
        return grid[..., 0] if grid.shape[2] == 1 else grid
    if "points" not in data:
        return None
    return points_image(data["points"], data.get("centres"))


def _rgb8(img: np.ndarray) -> np.ndarray:
    """A gray (H, W) or RGB image, uint8 or float in [0, 1], as uint8 (H, W, 3)."""
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2) if img.ndim == 2 else img


class _Pixels(matplotlib.artist.Artist):
    """An RGB(A) uint8 image drawn pixel for pixel at the canvas' bottom-left corner: straight
    to the renderer, without the resampling `figimage` does (the PNG gets the pixels as they
    are, the PDF embeds them losslessly at the figure's dpi)."""

    def __init__(self, pixels: np.ndarray) -> None:
        super().__init__()
        if pixels.shape[2] == 3:
            pixels = np.concatenate([pixels, np.full(pixels.shape[:2] + (1,), 255, np.uint8)], 2)
        self.pixels = np.ascontiguousarray(pixels[::-1])  # the renderers count rows upwards

    def draw(self, renderer) -> None:
        gc = renderer.new_gc()
        renderer.draw_image(gc, 0, 0, self.pixels)
        gc.restore()


def sample_sheet(entries: list[tuple[str, Path]], stem: Path, title: str
                 ) -> tuple[list[Path], list[str]]:
    """One contact sheet for a variant on one dataset: a titled panel per (panel title, sample
    file), e.g. one per seed, under `title`. Returns the paths written (the PNG, and the PDF
    beside it) and the panels drawn (a bad file is one warning line, its panel left out).

    The panels are pixels, so the sheet is one image at the PNG's resolution, each sample grid
    scaled by a whole factor (nearest) to about `panel` inches, with grey frames, and the titles
    are text over it: no axes (hundreds of sheets in a big store), and the PDF holds the same
    pixels, each sample pixel a crisp square, with the titles as text."""
    from bench.store.samples import SampleError

    images = []
    for panel_title, f in entries:
        try:
            img = sample_pixels(f)
        except SampleError as exc:  # a bad file: one line, its panel left out
            print(f"ganbench: warning: {exc}; its samples figure is skipped (in {stem.name})",
                  file=sys.stderr, flush=True)
            continue
        if img is not None:
            images.append((panel_title, img))
    if not images:
        return [], []
    points = any(img.ndim == 3 and img.dtype != np.uint8 for _, img in images)
    what = ("density of the scored points, red + = mode centres" if points
            else f"{IMAGE_SAMPLES} generated images")
    pixels = [_rgb8(img) for _, img in images]
    h = max(p.shape[0] for p in pixels)
    w = max(p.shape[1] for p in pixels)
    k = max(1, round(1.5 * DPI / max(h, w)))  # a panel of about 1.5 in
    ph, pw = h * k, w * k
    cols = min(5, len(images))
    rows = math.ceil(len(images) / cols)
    pad = round(0.1 * DPI)
    titles = [_wrap(t, pw / DPI, 7) for t, _ in images]
    title_px = round((max(t.count("\n") for t in titles) + 1) * 7 * 1.3 / 72 * DPI) + 6
    width = max(round(3.2 * DPI), cols * (pw + pad) + pad)
    head = _wrap(f"{title}: samples ({what})", width / DPI - 0.3, 8)
    top = round((0.1 + 0.15 * (head.count("\n") + 1)) * DPI)
    height = top + rows * (title_px + ph + pad) + pad // 2
    sheet = np.full((height, width, 3), 255, dtype=np.uint8)
    x0 = (width - cols * (pw + pad) + pad) // 2
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    for i, (img, text) in enumerate(zip(pixels, titles)):
        r, c = divmod(i, cols)
        x, y = x0 + c * (pw + pad), top + r * (title_px + ph + pad) + title_px
        sheet[y - 1:y + ph + 1, x - 1:x + pw + 1] = 190  # a grey frame
        big = img.repeat(k, 0).repeat(k, 1)
        dy, dx = (ph - big.shape[0]) // 2, (pw - big.shape[1]) // 2
        sheet[y:y + ph, x:x + pw] = 255
        sheet[y + dy:y + dy + big.shape[0], x + dx:x + dx + big.shape[1]] = big
        fig.text((x + pw / 2) / width, 1 - (y - 4) / height, text, fontsize=7,
                 ha="center", va="bottom")
    fig.add_artist(_Pixels(sheet))
    fig.suptitle(head, fontsize=8, y=1 - 0.06 * DPI / height, va="top")
    return _save(fig, stem), [t for t, _ in images]
