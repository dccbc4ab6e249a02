"""What every report figure shares: the Agg backend and the seaborn theme (set on import), the
resolution, text wrapped to the inches it has, and saving (`_save`: PNG, the PDF beside it, the
`ON_SAVE` hooks first). The switches a caller sets live here, so every figure module's save
reads the same ones: `PDF` (set it as `figures.style.PDF`) and `ON_SAVE` (the package
re-exports the same list)."""
from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402
import seaborn as sns  # noqa: E402

DPI = 200
PDF = True  # a PDF beside every PNG (off: write_report(pdf=False), `ganbench report --no-pdf`)
ON_SAVE: list[Callable] = []  # called with each figure before it is saved (the layout tests' hook)
sns.set_theme(style="whitegrid", context="paper", font_scale=0.9)


def _subplots(nrows: int, ncols: int, figsize: tuple[float, float], **kw):
    return plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, layout="constrained", **kw)


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """`text` wrapped to lines that fit `width_in` inches at `fontsize` points (an average
    glyph is about 0.55 em wide); each line of a multi-line text wrapped on its own."""
    chars = max(8, int(width_in * 72 / (0.6 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_long_words=True) or line
                     for line in text.split("\n"))


def _suptitle(fig, text: str, fontsize: float = 8) -> None:
    fig.suptitle(_wrap(text, fig.get_figwidth() - 0.1, fontsize), fontsize=fontsize)


def _save(fig, stem: Path) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    for hook in ON_SAVE:
        hook(fig, stem)
    engine = fig.get_layout_engine()
    if engine is not None and not isinstance(engine, PlaceHolderLayoutEngine):
        # the layout the PNG's save would compute (the renderer at its dpi), once, here: a
        # figure with a layout engine (even "none") costs each save a whole extra draw first
        was, fig.dpi = fig.dpi, DPI
        try:
            engine.execute(fig)
        finally:
            fig.dpi = was
    fig.set_layout_engine(None)  # the layout kept for the PNG and the PDF
    paths = [stem.with_name(stem.name + ".png")]  # a stem may hold a dot (lr=0.0005)
    fig.savefig(paths[0], dpi=DPI)
    if PDF:
        paths.append(stem.with_name(stem.name + ".pdf"))
        fig.savefig(paths[1], dpi=DPI)  # the dpi a sample sheet's pixels are placed at
    plt.close(fig)
    return paths
