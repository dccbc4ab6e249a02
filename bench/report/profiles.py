"""The study figures: performance profiles (Agarwal et al. 2021) and the verdict figure.

Both are drawn for reading at the size they are shown: every text at least MIN_FONT_PT points
at the figure's own size, one message per panel (one trick against the baseline; one dataset's
Δ per trick), and `text_problems(fig)` checks, from matplotlib's own text extents, that no text
is smaller than that and no two labels overlap (the tests call it on every figure)."""
from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator

from bench.report import aggregate, figures  # figures sets the Agg backend and the theme
from bench.store.results import direction

plt = figures.plt
MIN_FONT_PT = 8
COLUMNS = 5
VERDICT_COLOURS = {"helps": "tab:green", "hurts": "tab:red", "fragile": "tab:orange",
                   "no detectable effect": "tab:gray"}


def text_problems(fig) -> list[str]:
    """Texts below MIN_FONT_PT and pairs of visible texts whose boxes overlap (an empty list
    for a readable figure)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(plt.Text) if t.get_visible() and t.get_text().strip()
             and (t.axes is None or t.axes.get_visible())]
    problems = [f"{t.get_text()!r} at {t.get_fontsize():.1f} pt" for t in texts
                if t.get_fontsize() < MIN_FONT_PT - 1e-6]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    frame = fig.bbox
    problems += [f"{t.get_text()!r} runs off the figure" for t, b in boxes
                 if b.width and (b.x0 < frame.x0 - 1 or b.x1 > frame.x1 + 1
                                 or b.y0 < frame.y0 - 1 or b.y1 > frame.y1 + 1)]
    for (a, ba), (b, bb) in combinations(boxes, 2):
        if ba.width == 0 or bb.width == 0:
            continue
        if ba.overlaps(bb):
            inter_w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            inter_h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if inter_w > 1 and inter_h > 1:  # touching edges are not an overlap
                problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    return problems


def _short(label: str, width: int = 34) -> str:
    """A row label within `width` characters a line: a tuned label's setting ("packing [lr=0.001,
    steps=2017]") goes on a second line rather than being cut; a line still too long is cut (the
    full label is in the verdict table)."""
    def cut(text: str) -> str:
        return text if len(text) <= width else text[:width - 1] + "…"
    name, bracket, setting = label.partition(" [")
    return cut(name) + ("\n" + cut(bracket.strip() + setting) if bracket else "")


def _save(fig, stem: Path) -> list[Path]:
    """As every report figure (figures._save): PNG at figures.DPI, never fewer pixels, a PDF
    beside it unless `report --no-pdf`; the figures here are laid out by matplotlib's constrained
    engine, which places the suptitle too."""
    return figures._save(fig, stem)


def profile_figure(scores: dict, baselines: dict, name: str, stem: Path, title: str, *,
                   keep_open: bool = False):
    """One panel per trick: the share of its runs (all datasets pooled) with normalised score
    > tau, against its baseline's (grey: the runs its Δ is taken against), with pointwise
    stratified-bootstrap 95% bands. `scores`, `baselines`: {label: {data: runs}} of one
    normalised score (study.aggregate_scores)."""
    tricks = [lbl for lbl in scores if baselines.get(lbl)]
    if not tricks:
        return [] if not keep_open else None
    taus = np.linspace(0, 1, 101)
    cols = min(COLUMNS, len(tricks))
    nrows = -(-len(tricks) // cols)
    # no sharex / sharey: every panel gets the same limits and ticks below, and matplotlib's
    # shared axes cost each draw a pass over all their siblings (the square of the panels);
    # the inner tick labels are hidden by hand, as sharing would
    fig, axes = plt.subplots(nrows, cols, figsize=(1.8 * cols + 0.6, 1.45 * nrows + 0.9),
                             squeeze=False, layout="constrained")
    for ax in axes.flat[len(tricks):]:
        ax.set_visible(False)
    for ax, lbl in zip(axes.flat, tricks):
        b_prof, b_lo, b_hi = aggregate.performance_profile(list(baselines[lbl].values()), taus)
        prof, lo, hi = aggregate.performance_profile(list(scores[lbl].values()), taus)
        ax.fill_between(taus, b_lo, b_hi, color="0.8", lw=0)
        ax.plot(taus, b_prof, color="0.45", lw=1.2)
        ax.fill_between(taus, lo, hi, color="tab:blue", alpha=0.25, lw=0)
        ax.plot(taus, prof, color="tab:blue", lw=1.4)
        # y given: no per-draw search for top tick labels under the title (there are none)
        ax.set_title(_short(lbl, 22), fontsize=9, y=1.0)
        ax.tick_params(labelsize=8, labelbottom=False,
                       labelleft=ax.get_subplotspec().is_first_col())
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
        ax.set_yticks([0, 0.5, 1], ["0", "0.5", "1"])
    for c in range(cols):  # under the lowest panel of each column
        lowest = max(r for r in range(nrows) if r * cols + c < len(tricks))
        axes[lowest, c].set_xlabel(f"τ ({name})", fontsize=8)
        axes[lowest, c].tick_params(labelbottom=True)
    for ax in axes[:, 0]:
        ax.set_ylabel("runs > τ", fontsize=8)
    figures._suptitle(fig, f"{title}: share of runs above τ (blue: trick, grey: baseline; 95% "
                      f"bands)", 9)  # wrapped to the figure's width
    if keep_open:
        return fig
    return _save(fig, stem)


def verdict_figure(recs: list[dict], stem: Path, *, keep_open: bool = False):
    """One panel per dataset: each trick's Δ on the dataset's tuning metric with its 95% interval,
    coloured by verdict (green helps, red hurts, orange fragile, grey no detectable effect)."""
    by_data: dict[str, list[dict]] = {}
    for r in recs:
        if r.get("n") and r.get("delta") == r.get("delta"):
            key = r["data"] + (f" ({r['grid']})" if len({x["grid"] for x in recs}) > 1 else "")
            by_data.setdefault(key, []).append(r)
    if not by_data:
        return [] if not keep_open else None
    tallest = max(len(v) for v in by_data.values())
    row_h = 0.36 if any("\n" in _short(r["trick"]) for v in by_data.values() for r in v) else 0.22
    n = len(by_data)
    cols = min(3, n)
    nrows = -(-n // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.9 * cols, (row_h * tallest + 1.2) * nrows),
                             squeeze=False, layout="constrained")
    # tick labels of two panels apart, and room for the last one at the right edge
    fig.get_layout_engine().set(w_pad=0.12, wspace=0.06, rect=(0, 0, 0.97, 1))
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    for ax, (data, rows) in zip(axes.flat, by_data.items()):
        y = np.arange(len(rows))[::-1]
        for yi, r in zip(y, rows):
            c = VERDICT_COLOURS.get(r["verdict"], "tab:gray")
            if r["lo"] == r["lo"]:
                ax.plot([r["lo"], r["hi"]], [yi, yi], color=c, lw=1.4)
            filled = r["verdict"] in ("helps", "hurts")
            ax.plot([r["delta"]], [yi], "o", color=c, ms=4.5, mfc=c if filled else "white")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_yticks(y, [_short(r["trick"]) for r in rows], fontsize=8, linespacing=1.0)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        metric = rows[0]["metric"]
        ax.set_xlabel(f"Δ {metric} ({'↑' if direction(metric) == 'up' else '↓'} better)",
                      fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=5, prune="both"))  # no tick at an edge
        ax.set_title(data, fontsize=9, y=1.0)  # y given: no per-draw search above the axes
    figures._suptitle(fig, "Verdict: Δ vs baseline, 95% interval\nfilled = helps/hurts after "
                      "Holm; orange = fragile", 9)  # wrapped to the figure's width
    if keep_open:
        return fig
    return _save(fig, stem)
