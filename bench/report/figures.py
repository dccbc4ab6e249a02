"""Figures of the report (seaborn on matplotlib's Agg backend), fit for a paper: PNG at `DPI`
(200) with nothing scaled down to meet a size cap (figures are small by design: a few inches,
panel sizes fixed) and a PDF beside each (vector; `ganbench report --no-pdf` leaves them out),
no title or label clipped (constrained layout for the few-panel figures; a fixed geometry,
`_PanelGrid`, for the figures with a panel per variant, whose cost would otherwise grow with
the square of their panels), titles wrapped to their panel, and a legend or caption line for
every encoding. `layout_problems(fig)` is the check the tests run on every figure kind.

Each function writes `<stem>.png` and `<stem>.pdf` (PDF on, the default) and returns the paths it
wrote, or [] when the data has nothing to plot."""
from __future__ import annotations

import math
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib import ticker  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bench.report.stats import LEVEL  # noqa: E402
from bench.store.results import direction  # noqa: E402
# torch-free parts
from bench.store.samples import IMAGE_SAMPLES, points_image, tile_images  # noqa: E402

DPI = 200
PDF = True  # a PDF beside every PNG (off: write_report(pdf=False), `ganbench report --no-pdf`)
# reference rows in the metric-curve panels (bench.report.references)
REFERENCE_COLOURS = {"chance": "tab:red", "degraded": "tab:orange", "ceiling": "tab:green"}
# called with each figure before it is saved (the layout test's hook)
ON_SAVE: list[Callable] = []
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
    paths = [stem.with_name(stem.name + ".png")]  # a stem may hold a dot (lr=0.0005)
    fig.savefig(paths[0], dpi=DPI)
    if PDF:
        # the layout the PNG got (the constrained engine is most of a save's time): kept
        fig.set_layout_engine("none")
        paths.append(stem.with_name(stem.name + ".pdf"))
        fig.savefig(paths[1], dpi=DPI)  # the dpi a sample sheet's pixels are placed at
    plt.close(fig)
    return paths


def _drawn_texts(fig) -> list[tuple[str, Text]]:
    """(kind, artist) of every text a draw shows: the figure's, each axes' titles, axis labels,
    tick labels in view, annotations and legend texts."""
    out: list[tuple[str, Text]] = []
    if fig._suptitle is not None:
        out.append(("title", fig._suptitle))
    out += [("title", t) for t in fig.texts if t is not fig._suptitle]  # a sample sheet's panels'
    for leg in fig.legends:
        out += [("legend", t) for t in leg.get_texts()]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for t in (ax.title, ax._left_title, ax._right_title):
            out.append(("title", t))
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                out.append(("label", axis.label))
                for tick in axis._update_ticks():
                    out += [("tick", t) for t in (tick.label1, tick.label2)]
        out += [("text", t) for t in ax.texts]
        if ax.get_legend() is not None:
            out += [("legend", t) for t in ax.get_legend().get_texts()]
    return [(k, t) for k, t in out if t.get_visible() and t.get_text().strip()]


def layout_problems(fig, tolerance: float = 1.0) -> list[str]:
    """What a reader would see wrong, after a draw: a text outside the canvas (clipped), or two
    titles (the figure's, the panels') overlapping each other. [] when none."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    problems = []
    titles = []
    for kind, t in _drawn_texts(fig):
        box = t.get_window_extent(renderer)
        if (box.x0 < canvas.x0 - tolerance or box.y0 < canvas.y0 - tolerance
                or box.x1 > canvas.x1 + tolerance or box.y1 > canvas.y1 + tolerance):
            problems.append(f"{kind} {t.get_text()!r} lies outside the canvas "
                            f"({box.x0:.0f}..{box.x1:.0f} x {box.y0:.0f}..{box.y1:.0f} in "
                            f"{canvas.width:.0f} x {canvas.height:.0f})")
        if kind == "title":
            titles.append((t, box))
    for i, (t1, b1) in enumerate(titles):
        for t2, b2 in titles[i + 1:]:
            if b1.overlaps(b2):
                problems.append(f"titles {t1.get_text()!r} and {t2.get_text()!r} overlap")
    for ax in fig.axes:  # one axis' tick labels run into each other (unreadable)
        if not ax.get_visible() or not ax.axison:
            continue
        for axis in (ax.xaxis, ax.yaxis):
            boxes = [(t.get_text(), t.get_window_extent(renderer))
                     for tick in axis._update_ticks() for t in (tick.label1,)
                     if t.get_visible() and t.get_text().strip()]
            for i, (n1, b1) in enumerate(boxes):
                for n2, b2 in boxes[i + 1:]:
                    if b1.overlaps(b2):
                        problems.append(f"tick labels {n1!r} and {n2!r} overlap")
    return problems


def claims_of(numbers: pd.DataFrame, metrics: list[str], primary: str | None,
              prefix: str = "d") -> list[str]:
    """The metrics of `metrics` whose Δs are claims, as the tables decide
    (bench.report.views.delta_table): the grid's pre-registered `primary` alone where it sets one
    for the dataset and the table holds its Δ, else every metric. The others are secondary:
    described with intervals, not tested, never marked significant."""
    if primary is not None and f"{prefix}_{primary}" in numbers:
        return [m for m in metrics if m == primary]
    return list(metrics)


def _with_primary(numbers: pd.DataFrame, metrics: list[str], primary: str | None,
                  prefix: str = "d") -> list[str]:
    """`metrics`, with the primary first where the table holds its Δ but the headline list lacks
    it (the tables show it first then too)."""
    if primary is not None and f"{prefix}_{primary}" in numbers and primary not in metrics:
        return [primary, *metrics]
    return list(metrics)


def _significant(numbers: pd.DataFrame, col: str) -> np.ndarray:
    """The tables' *: the sign-flip p (else the paired t p) below 1 - LEVEL (the CI excluding 0
    without one)."""
    if f"{col}_p_perm" in numbers:
        return numbers[f"{col}_p_perm"].to_numpy(float) < 1 - LEVEL
    if f"{col}_p" in numbers:
        return numbers[f"{col}_p"].to_numpy(float) < 1 - LEVEL
    lo, hi = numbers[f"{col}_lo"].to_numpy(float), numbers[f"{col}_hi"].to_numpy(float)
    return np.isfinite(lo) & ((lo > 0) | (hi < 0))


def forest(numbers: pd.DataFrame, metrics: list[str], stem: Path, title: str,
           prefix: str = "d", label: str = "Δ vs baseline", primary: str | None = None
           ) -> list[Path]:
    """Δ with its 95% CI per variant (one panel per headline metric); filled = the tables' *,
    green / red = significantly better / worse, grey = not significant (a legend says so).
    `primary`: the grid's pre-registered metric for the dataset (bench.report.rows.primary_of);
    with it only that metric's Δs are claims (`claims_of`), and the other panels are secondary:
    every marker grey and hollow, the panel titled "secondary, not tested", as the tables leave
    their Δs without a *. None (no primary): every panel's Δs are claims."""
    metrics = _with_primary(numbers, metrics, primary, prefix)
    claims = claims_of(numbers, metrics, primary, prefix)
    metrics = [m for m in metrics if f"{prefix}_{m}" in numbers and numbers[f"{prefix}_{m}"].notna().any()]
    if not metrics:
        return []
    names = numbers["variant"] if "variant" in numbers else numbers.iloc[:, 0]
    keep = numbers[[f"{prefix}_{m}" for m in metrics]].notna().any(axis=1)
    rows, names = numbers[keep], list(names[keep])
    label_w = min(2.6, 0.3 + 0.055 * max(len(str(n)) for n in names))  # the y labels' column
    width = label_w + 1.9 * len(metrics)
    height = 1.5 + 0.2 * len(rows)
    fig, axes = _subplots(1, len(metrics), (width, height), sharey=True)
    y = np.arange(len(rows))[::-1]
    for ax, m in zip(axes[0], metrics):
        d, lo, hi = (rows[f"{prefix}_{m}{s}"].to_numpy(float) for s in ("", "_lo", "_hi"))
        good = 1 if direction(m) != "down" else -1
        sig = _significant(rows, f"{prefix}_{m}") & (m in claims)  # secondary: never
        colour = np.where(sig & (good * d > 0), "tab:green", np.where(sig, "tab:red", "tab:gray"))
        # one collection of bars and one of dots per panel (an artist per row costs a draw each)
        bar = np.isfinite(lo) & np.isfinite(hi)
        ax.hlines(y[bar], lo[bar], hi[bar], colors=colour[bar], lw=1.4)
        dot = np.isfinite(d)
        ax.scatter(d[dot], y[dot], s=16, edgecolors=colour[dot], linewidths=1,
                   facecolors=np.where(sig, colour, "white")[dot], zorder=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_title(f"{m} ({'↑' if good > 0 else '↓'} better)"
                     + ("" if m in claims else "\nsecondary, not tested"), fontsize=8, y=1.0)
        ax.set_xlabel(label, fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
    axes[0][0].set_yticks(y, [_wrap(str(n), label_w, 7) for n in names], fontsize=7)
    handles = [Line2D([], [], color="tab:green", marker="o", lw=1.4, ms=4,
                      label="better, p < 0.05"),
               Line2D([], [], color="tab:red", marker="o", lw=1.4, ms=4,
                      label="worse, p < 0.05"),
               Line2D([], [], color="tab:gray", marker="o", mfc="white", lw=1.4, ms=4,
                      label="not significant (hollow)")]
    if any(m not in claims for m in metrics):
        handles[0].set_label(f"better, p < 0.05 ({primary}, primary)")
        handles[1].set_label(f"worse, p < 0.05 ({primary}, primary)")
        handles.append(Line2D([], [], color="tab:gray", marker="o", mfc="white", lw=1.4, ms=4,
                              label="secondary metric: not tested (hollow)"))
    fig.legend(handles=handles, loc="outside lower center",
               ncols=min(3, len(handles)) if width > 4.5 else 1,
               fontsize=6, frameon=False,
               title=f"dot: mean Δ over paired seeds; bar: {round(100 * LEVEL)}% CI",
               title_fontsize=6)
    _suptitle(fig, title, 9)
    return _save(fig, stem)


def _long_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Every stored curve point of `rows` (one row per cell) as (variant, seed, curve, step,
    value)."""
    out = []
    for label, seed, curves in zip(rows["row_label"], rows["seed"], rows["curves"]):
        for name, points in (curves or {}).items():
            out += [(label, seed, name, step, value) for step, value in points]
    return pd.DataFrame(out, columns=["variant", "seed", "curve", "step", "value"])


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


def metric_curves(rows: pd.DataFrame | None, stem: Path, title: str, lines=None,
                  data: pd.DataFrame | None = None) -> list[Path]:
    """Each eval_* curve per variant (one panel each), mean over seeds with a ±1 sd band; the
    baseline in grey in every panel. `lines`: {metric: [(label, role, mean, sd)]}, reference
    rows drawn in every panel of their metric (bench.report.references.curve_lines). `data`:
    `_long_curves(rows)`, when the caller has it."""
    data = _long_curves(rows) if data is None else data
    data = data[data["curve"].str.startswith("eval_")]
    if data.empty:
        return []
    stats = data.groupby(["curve", "variant", "step"], sort=False)["value"].agg(["mean", "std"])
    stats["std"] = stats["std"].fillna(0)
    paths = []
    for curve, part in stats.groupby(level="curve", sort=True):
        per = {v: g.droplevel([0, 1]).sort_index() for v, g in part.groupby(level="variant",
                                                                             sort=False)}
        base = per.get("baseline")
        variants = [v for v in per if v != "baseline"] or ["baseline"]
        refs = (lines or {}).get(curve[5:], [])
        roles = Counter(role for _, role, *_ in refs)
        note = "; dotted: " + ", ".join(  # the rows are named in the tables
            f"{REFERENCE_COLOURS.get(r, 'tab:purple')[4:]} {r}" + (f" ×{k}" if k > 1 else "")
            for r, k in roles.items()) if roles else ""
        grid = _PanelGrid(variants, f"{title}: {curve[5:]} vs step (blue: the panel's variant, "
                          f"grey: baseline, mean over seeds; band: ±1 sd over seeds{note})")
        steps = part.index.get_level_values("step")
        low = [float((part["mean"] - part["std"]).min())] + [m - sd for *_, m, sd in refs]
        high = [float((part["mean"] + part["std"]).max())] + [m + sd for *_, m, sd in refs]
        grid.limits(_lim(float(steps.min()), float(steps.max()), 0.02), _lim(min(low), max(high)))
        for ax, v in zip(grid.axes, variants):
            for g, colour in ((base, "0.6"), (per[v], "tab:blue")):
                if g is None:
                    continue
                x, m, sd = g.index.to_numpy(float), g["mean"].to_numpy(), g["std"].to_numpy()
                ax.plot(x, m, color=colour, lw=1, marker="o" if len(g) <= 2 else None, ms=3)
                ax.fill_between(x, m - sd, m + sd, color=colour, alpha=0.25, lw=0)
            for _, role, mean, sd in refs:
                colour = REFERENCE_COLOURS.get(role, "tab:purple")
                ax.axhline(mean, color=colour, lw=0.8, ls=":")
                ax.axhspan(mean - sd, mean + sd, color=colour, alpha=0.12, lw=0)
        paths += _save(grid.fig, stem.with_name(f"{stem.name}-{curve}"))
    return paths


def loss_curves(rows: pd.DataFrame | None, stem: Path, title: str,
                data: pd.DataFrame | None = None) -> list[Path]:
    """Every logged loss term per variant, mean over seeds (each panel its own y scale).
    `data`: `_long_curves(rows)`, when the caller has it."""
    data = _long_curves(rows) if data is None else data
    data = data[~data["curve"].str.startswith("eval_")]
    if data.empty:
        return []
    means = data.groupby(["variant", "curve", "step"], sort=False)["value"].mean()
    variants = list(dict.fromkeys(data["variant"]))
    terms = sorted(data["curve"].unique())
    palette = dict(zip(terms, sns.color_palette("tab10", len(terms))))
    cols = min(6, len(variants))
    spare = cols * math.ceil(len(variants) / cols) > len(variants)
    legend_cols = max(1, min(len(terms), int((1.9 * cols) / 1.3)))
    bottom = 0 if spare else 0.15 * math.ceil(len(terms) / legend_cols)
    grid = _PanelGrid(variants, f"{title}: loss terms vs step (mean over seeds)", cols=cols,
                      own_y=True, bottom=bottom)
    steps = data["step"].to_numpy(float)
    ylims = []
    for v in variants:
        vals = means.loc[v].to_numpy(float)
        ylims.append(_lim(float(np.nanmin(vals)), float(np.nanmax(vals))) if len(vals) else (0, 1))
    grid.limits(_lim(float(steps.min()), float(steps.max()), 0.02), ylims=ylims)
    for ax, v in zip(grid.axes, variants):
        g = means.loc[v]
        for term in g.index.get_level_values(0).unique():
            s = g.loc[term].sort_index()
            # one log point per run (a short smoke run): a marker, not an invisible line
            ax.plot(s.index.to_numpy(float), s.to_numpy(), lw=0.8, color=palette[term],
                    label=term, marker="o" if len(s) <= 2 else None, ms=3)
    handles = [Line2D([], [], color=palette[t], label=t) for t in terms]
    if spare:  # the legend goes into the first empty slot, else below the panels
        last = grid.axes[-1].get_position()
        fig_w = grid.fig.get_figwidth()
        grid.fig.legend(handles=handles, loc="upper left", fontsize=6, frameon=False,
                        bbox_to_anchor=(last.x1 + 0.45 / fig_w, last.y1 + 0.1 / grid.fig.get_figheight()))
    else:
        grid.fig.legend(handles=handles, loc="lower center", fontsize=6, frameon=False,
                        ncols=legend_cols, bbox_to_anchor=(0.5, 0.01))
    return _save(grid.fig, stem)


def interaction_heatmap(numbers: pd.DataFrame, metric: str, stem: Path, title: str) -> list[Path]:
    """Interaction Δ(a+b) − Δ(a) − Δ(b) of the pairs, as a symmetric trick × trick matrix; one
    panel per sweep point (`point`, e.g. each tuned lr), so no point overwrites another."""
    col = f"i_{metric}"
    if numbers.empty or col not in numbers or numbers[col].notna().sum() == 0:
        return []
    tricks = sorted(set(numbers["a"]) | set(numbers["b"]))
    points = list(dict.fromkeys(numbers["point"])) if "point" in numbers else [""]
    lim = float(np.nanmax(np.abs(numbers[col].to_numpy(float)))) or 1.0
    label_in = 0.3 + 0.06 * max(len(t) for t in tricks)  # the trick names beside the matrix
    size = label_in + 0.45 * len(tricks)
    cols = min(4, len(points))
    rows_n = math.ceil(len(points) / cols)
    fig, axes = _subplots(rows_n, cols, (max(3.6, (size + 0.8) * cols), size * rows_n + 0.9))
    cmap = "RdBu" if direction(metric) != "down" else "RdBu_r"
    for ax in list(axes.flat)[len(points):]:
        ax.axis("off")
    for ax, point in zip(axes.flat, points):
        part = numbers[numbers["point"] == point] if "point" in numbers else numbers
        mat = pd.DataFrame(np.nan, index=tricks, columns=tricks)
        notes = pd.DataFrame("", index=tricks, columns=tricks)
        for (_, r), sig in zip(part.iterrows(), _significant(part, col)):
            v = r[col]
            for a, b in ((r["a"], r["b"]), (r["b"], r["a"])):
                mat.loc[a, b] = v
                notes.loc[a, b] = "" if not np.isfinite(v) else f"{v:+.2g}{'*' if sig else ''}"
        sns.heatmap(mat, annot=notes, fmt="", cmap=cmap, vmin=-lim, vmax=lim, ax=ax,
                    annot_kws={"fontsize": 6}, cbar_kws={"shrink": 0.7})
        ax.collections[0].colorbar.ax.tick_params(labelsize=6)
        ax.grid(False)
        ax.tick_params(labelsize=7)
        ax.tick_params(axis="y", labelrotation=0)
        ax.tick_params(axis="x", labelrotation=90)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if point:
            ax.set_title(_wrap(str(point), size, 7), fontsize=7)
    _suptitle(fig, f"{title}: interaction on {metric}\n(Δ(a+b) − Δ(a) − Δ(b); blue = better "
              "together than alone; * sign-flip p < 0.05; blank: not run or conflict)", 8)
    return _save(fig, stem)


def summary(panels: list[tuple], stem: Path) -> list[Path]:
    """One figure a reader sees first: per dataset, Δ vs baseline of each variant on each
    headline metric, coloured by improvement (green better, red worse; scaled per column),
    annotated with Δ and * where the tables put one (the sign-flip p < 0.05). A panel is
    (title, numbers, metrics) or (title, numbers, metrics, primary): with the dataset's
    pre-registered primary metric only its column's Δs are claims and can get a *; the other
    columns are secondary (labelled "(sec.)", never starred), as in the tables."""
    panels = [(t, n, _with_primary(n, ms, p[0] if p else None),
               claims_of(n, _with_primary(n, ms, p[0] if p else None), p[0] if p else None))
              for t, n, ms, *p in panels]
    panels = [(t, n, [m for m in ms if f"d_{m}" in n and n[f"d_{m}"].notna().any()], cl)
              for t, n, ms, cl in panels]
    panels = [(t, n[n[[f"d_{m}" for m in ms]].notna().any(axis=1)], ms, cl)
              for t, n, ms, cl in panels if ms]
    panels = [p for p in panels if len(p[1])]
    if not panels:
        return []
    secondary = any(m not in cl for _, _, ms, cl in panels for m in ms)
    height = max(2.4, 0.2 * max(len(n) for _, n, _, _ in panels) + 1.6)
    label_in = min(2.6, 0.3 + 0.055 * max(len(str(v)) for _, n, _, _ in panels
                                          for v in n["variant"]))
    panel_w = [label_in + 0.55 * len(ms) + 0.2 for _, _, ms, _ in panels]
    fig, axes = _subplots(1, len(panels), (max(4.0, sum(panel_w)), height),
                          gridspec_kw={"width_ratios": panel_w})
    for ax, (title, n, ms, claims), w in zip(axes[0], panels, panel_w):
        columns = [m if m in claims else f"{m} (sec.)" for m in ms]
        good = pd.DataFrame({c: n[f"d_{m}"].to_numpy(float) * (1 if direction(m) != "down" else -1)
                             for m, c in zip(ms, columns)},
                            index=[_wrap(str(v), label_in, 6) for v in n["variant"]])
        scaled = good / good.abs().max().replace(0, 1)
        text = pd.DataFrame({c: [("" if not np.isfinite(d) else f"{d:+.2g}")
                                 + ("*" if s and m in claims else "")
                                 for d, s in zip(n[f"d_{m}"], _significant(n, f"d_{m}"))]
                             for m, c in zip(ms, columns)}, index=good.index)
        sns.heatmap(scaled, annot=text, fmt="", cmap="RdYlGn", vmin=-1, vmax=1, cbar=False, ax=ax,
                    annot_kws={"fontsize": 5.5})
        ax.set_title(_wrap(title, w, 7), fontsize=7)
        ax.tick_params(labelsize=6)
        ax.tick_params(axis="y", labelrotation=0)
        ax.tick_params(axis="x", labelrotation=30)
        for t in ax.get_xticklabels():
            t.set_horizontalalignment("right")
        ax.set_xlabel("")
    _suptitle(fig, "Δ vs baseline per headline metric (paired over seeds; colour: green = "
              "better, red = worse, scaled per column; * = sign-flip p < 0.05"
              + ("; (sec.) = secondary to the dataset's pre-registered primary metric: "
                 "described, not tested, no *)" if secondary else ")"), 8)
    return _save(fig, stem)


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
