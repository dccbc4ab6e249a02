"""A fixed-geometry grid of small panels (`_PanelGrid`) for the figures with a panel per variant,
with its axis limits (`_lim`) and short tick labels (`_TICKS`)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker

from bench.report.figures.style import _wrap


def _lim(lo: float, hi: float, margin: float = 0.05) -> tuple[float, float]:
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0.0, 1.0
    pad = (hi - lo) * margin or max(abs(hi) * 0.05, 0.5)
    return lo - pad, hi + pad


# short tick labels and no offset text over a title: 1200 (a step), 0.25, 1.5e+04
_TICKS = ticker.FuncFormatter(lambda v, _: f"{v:.0f}" if v == int(v) and abs(v) < 1e5
                              else f"{v:.3g}")


class _PanelGrid:
    """A grid of small panels in a fixed geometry (inches), for figures with dozens of panels
    (a variant each): no layout engine and no matplotlib axis sharing, whose costs grow with the
    number of panels squared; shared limits are set by hand and only the outer panels carry tick
    labels. Text sizes are fixed, so the space each needs is known: a panel's wrapped title
    above it, y tick labels left of the first column (of every column with `own_y`), x tick
    labels below the lowest panel of each column, the figure's wrapped title on top, and
    `bottom` inches (a legend) under everything."""

    W, H = 1.5, 1.0  # a panel
    TICK = 5  # tick label points
    TITLE = 6  # panel title points

    def __init__(self, titles: list[str], head: str, *, cols: int = 6, own_y: bool = False,
                 bottom: float = 0.0, head_size: float = 8) -> None:
        n = len(titles)
        self.cols = cols = max(1, min(cols, n))
        self.rows = rows = math.ceil(n / cols)
        self.own_y = own_y
        ylab = 0.36  # y tick labels ("-0.125") and their pad
        gap_x = ylab + 0.06 if own_y else 0.12
        left, right = ylab + 0.05, 0.12
        width = left + cols * self.W + (cols - 1) * gap_x + right
        line = self.TITLE * 1.3 / 72
        wrapped = [_wrap(t, self.W, self.TITLE) for t in titles]
        title_h = [max(w.count("\n") + 1 for w in wrapped[r * cols:(r + 1) * cols]) * line + 0.06
                   for r in range(rows)]
        self.head = _wrap(head, width - 0.2, head_size)
        top = 0.1 + (self.head.count("\n") + 1) * head_size * 1.3 / 72
        xlab = 0.16  # x tick labels below a panel
        height = top + sum(title_h) + rows * self.H + (rows - 1) * 0.04 + xlab + bottom + 0.06
        self.fig = fig = plt.figure(figsize=(width, height))
        self.axes = []
        y = height - top
        for r in range(rows):
            y -= title_h[r] + self.H
            for c in range(cols):
                i = r * cols + c
                if i >= n:
                    break
                x = left + c * (self.W + gap_x)
                ax = fig.add_axes((x / width, y / height, self.W / width, self.H / height))
                # y given: matplotlib skips its per-draw search for top ticks under the title
                ax.set_title(wrapped[i], fontsize=self.TITLE, pad=2, y=1.0)
                lowest = i + cols >= n  # no panel below it: it shows the x tick labels
                ax.tick_params(labelsize=self.TICK, pad=1.5, length=2, labelbottom=lowest,
                               labelleft=own_y or c == 0)
                ax.xaxis.set_major_locator(ticker.MaxNLocator(4))
                ax.yaxis.set_major_locator(ticker.MaxNLocator(4))
                ax.xaxis.set_major_formatter(_TICKS)
                ax.yaxis.set_major_formatter(_TICKS)
                ax.set_autoscale_on(False)
                self.axes.append(ax)
            y -= 0.04
        fig.suptitle(self.head, fontsize=head_size, y=1 - 0.06 / height, va="top")
        self.bottom = (0.04 + bottom) / height  # a legend's anchor (figure fraction)

    def limits(self, xlim, ylim=None, ylims=None) -> None:
        for i, ax in enumerate(self.axes):
            ax.set_xlim(*xlim)
            ax.set_ylim(*(ylims[i] if ylims is not None else ylim))
