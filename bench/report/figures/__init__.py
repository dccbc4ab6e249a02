"""Figures of the report (seaborn on matplotlib's Agg backend), fit for a paper: PNG at `DPI`
(200) with nothing scaled down to meet a size cap (figures are small by design: a few inches,
panel sizes fixed) and a PDF beside each (vector; `ganbench report --no-pdf` leaves them out),
no title or label clipped (constrained layout for the few-panel figures; a fixed geometry,
`_PanelGrid`, for the figures with a panel per variant, whose cost would otherwise grow with
the square of their panels), titles wrapped to their panel, and a legend or caption line for
every encoding. `layout_problems(fig)` is the check the tests run on every figure kind.

Each function writes `<stem>.png` and `<stem>.pdf` (PDF on, the default) and returns the paths it
wrote, or [] when the data has nothing to plot.

The figures live in one module per family, all re-exported here: `style` (backend, theme, DPI,
wrapping, `_save`), `layout` (`layout_problems`), `effects` (forest, summary, interaction
heatmap), `panels` (the fixed panel grid), `curves` (metric and loss curves), `samples` (sample
sheets). The save switches live in `style` (`style.PDF`, `style.ON_SAVE`, read by `_save` at
each save); `ON_SAVE` is re-exported here as the same list, so appending a hook works either way."""
from __future__ import annotations

from bench.report.figures.style import (DPI, ON_SAVE, _save, _subplots, _suptitle,  # noqa: E402
                                        _wrap, plt)
from bench.report.figures.layout import _drawn_texts, layout_problems  # noqa: E402
from bench.report.figures.panels import _TICKS, _lim, _PanelGrid  # noqa: E402
from bench.report.figures.effects import (_heads_and_claims, _significant,  # noqa: E402
                                          forest, interaction_heatmap, summary)
from bench.report.figures.curves import (REFERENCE_COLOURS, long_curves,  # noqa: E402
                                         loss_curves, metric_curves)
from bench.report.figures.samples import _Pixels, _rgb8, sample_pixels, sample_sheet  # noqa: E402

__all__ = ["DPI", "ON_SAVE", "REFERENCE_COLOURS", "forest",
           "interaction_heatmap", "layout_problems", "long_curves", "loss_curves", "metric_curves", "plt",
           "sample_pixels", "sample_sheet", "summary"]
