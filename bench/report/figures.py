"""Figures of the report (seaborn on matplotlib's Agg backend), fit for a paper: PNG at `DPI`
(200) with nothing scaled down to meet a size cap (figures are small by design: a few inches,
panel sizes fixed), a PDF beside each when asked (`ganbench report --pdf`), constrained layout
so no title or label is clipped, titles wrapped to their panel, and a legend or caption line
for every encoding. `layout_problems(fig)` is the check the tests run on every figure kind.

Each function writes `<stem>.png` (and `<stem>.pdf` with PDF on) and returns the paths it wrote,
or [] when the data has nothing to plot."""
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
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from bench.report.stats import LEVEL  # noqa: E402
from bench.store.results import direction  # noqa: E402
# torch-free parts
from bench.store.samples import IMAGE_SAMPLES, points_image, tile_images  # noqa: E402

DPI = 200
PDF = False  # a PDF beside every PNG (write_report(pdf=True), `ganbench report --pdf`)
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
        fig.savefig(paths[1])
    plt.close(fig)
    return paths


def _drawn_texts(fig) -> list[tuple[str, Text]]:
    """(kind, artist) of every text a draw shows: the figure's, each axes' titles, axis labels,
    tick labels in view, annotations and legend texts."""
    out: list[tuple[str, Text]] = []
    if fig._suptitle is not None:
        out.append(("title", fig._suptitle))
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
           prefix: str = "d", label: str = "Δ vs baseline") -> list[Path]:
    """Δ with its 95% CI per variant (one panel per headline metric); filled = the tables' *,
    green / red = significantly better / worse, grey = not significant (a legend says so)."""
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
        sig = _significant(rows, f"{prefix}_{m}")
        colour = np.where(sig & (good * d > 0), "tab:green", np.where(sig, "tab:red", "tab:gray"))
        for yi, di, l, h, c, s in zip(y, d, lo, hi, colour, sig):
            if np.isfinite(l):
                ax.plot([l, h], [yi, yi], color=c, lw=1.4)
            ax.plot([di], [yi], "o", color=c, ms=4, mfc=c if s else "white")
        ax.axvline(0, color="black", lw=0.8)
        ax.set_title(f"{m} ({'↑' if good > 0 else '↓'} better)", fontsize=8)
        ax.set_xlabel(label, fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
    axes[0][0].set_yticks(y, [_wrap(str(n), label_w, 7) for n in names], fontsize=7)
    handles = [Line2D([], [], color="tab:green", marker="o", lw=1.4, ms=4,
                      label="better, p < 0.05"),
               Line2D([], [], color="tab:red", marker="o", lw=1.4, ms=4,
                      label="worse, p < 0.05"),
               Line2D([], [], color="tab:gray", marker="o", mfc="white", lw=1.4, ms=4,
                      label="not significant (hollow)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=3 if width > 4.5 else 1,
               fontsize=6, frameon=False,
               title=f"dot: mean Δ over paired seeds; bar: {round(100 * LEVEL)}% CI",
               title_fontsize=6)
    _suptitle(fig, title, 9)
    return _save(fig, stem)


def _long_curves(rows: pd.DataFrame, prefix: str | None = None, names=None) -> pd.DataFrame:
    out = []
    for _, r in rows.drop_duplicates("cell_id").iterrows():
        for name, points in (r["curves"] or {}).items():
            if (prefix and not name.startswith(prefix)) or (names and name not in names):
                continue
            for step, value in points:
                out.append({"variant": r["row_label"], "seed": r["seed"], "curve": name,
                            "step": step, "value": value})
    return pd.DataFrame(out)


def metric_curves(rows: pd.DataFrame, stem: Path, title: str, lines=None) -> list[Path]:
    """Each eval_* curve per variant (one panel each), mean over seeds with a ±1 sd band; the
    baseline in grey in every panel. `lines`: {metric: [(label, role, mean, sd)]}, reference
    rows drawn in every panel of their metric (bench.report.references.curve_lines)."""
    data = _long_curves(rows, prefix="eval_")
    if data.empty:
        return []
    paths = []
    for curve, part in data.groupby("curve"):
        base = part[part["variant"] == "baseline"]
        variants = [v for v in dict.fromkeys(part["variant"]) if v != "baseline"] or ["baseline"]
        cols = min(6, len(variants))
        nrows = math.ceil(len(variants) / cols)
        fig, axes = _subplots(nrows, cols, (1.8 * cols + 0.3, 1.4 * nrows + 0.7),
                              sharex=True, sharey=True)
        for ax, v in zip(axes.flat, variants):
            for sub, colour in ((base, "0.6"), (part[part["variant"] == v], "tab:blue")):
                if sub.empty:
                    continue
                g = sub.groupby("step")["value"].agg(["mean", "std"]).fillna(0)
                ax.plot(g.index, g["mean"], color=colour, lw=1,
                        marker="o" if len(g) <= 2 else None, ms=3)
                ax.fill_between(g.index, g["mean"] - g["std"], g["mean"] + g["std"],
                                color=colour, alpha=0.25, lw=0)
            for _, role, mean, sd in (lines or {}).get(curve[5:], []):
                colour = REFERENCE_COLOURS.get(role, "tab:purple")
                ax.axhline(mean, color=colour, lw=0.8, ls=":")
                ax.axhspan(mean - sd, mean + sd, color=colour, alpha=0.12, lw=0)
            ax.set_title(_wrap(v, 1.7, 6), fontsize=6)
            ax.tick_params(labelsize=5)
        for ax in list(axes.flat)[len(variants):]:
            ax.axis("off")
        roles = Counter(role for _, role, *_ in (lines or {}).get(curve[5:], []))
        refs = "; dotted: " + ", ".join(  # the rows are named in the tables
            f"{REFERENCE_COLOURS.get(r, 'tab:purple')[4:]} {r}" + (f" ×{k}" if k > 1 else "")
            for r, k in roles.items()) if roles else ""
        _suptitle(fig, f"{title}: {curve[5:]} vs step (blue: the panel's variant, grey: "
                  f"baseline, mean over seeds; band: ±1 sd over seeds{refs})", 8)
        paths += _save(fig, stem.with_name(f"{stem.name}-{curve}"))
    return paths


def loss_curves(rows: pd.DataFrame, stem: Path, title: str) -> list[Path]:
    """Every logged loss term per variant, mean over seeds."""
    data = _long_curves(rows)
    data = data[~data["curve"].str.startswith("eval_")] if not data.empty else data
    if data.empty:
        return []
    variants = list(dict.fromkeys(data["variant"]))
    cols = min(6, len(variants))
    nrows = math.ceil(len(variants) / cols)
    fig, axes = _subplots(nrows, cols, (1.8 * cols + 0.3, 1.4 * nrows + 0.9), sharex=True)
    terms = sorted(data["curve"].unique())
    palette = dict(zip(terms, sns.color_palette("tab10", len(terms))))
    for ax, v in zip(axes.flat, variants):
        g = data[data["variant"] == v].groupby(["curve", "step"])["value"].mean()
        for term in g.index.get_level_values(0).unique():
            s = g.loc[term]
            # one log point per run (a short smoke run): a marker, not an invisible line
            ax.plot(s.index, s.to_numpy(), lw=0.8, color=palette[term], label=term,
                    marker="o" if len(s) <= 2 else None, ms=3)
        ax.set_title(_wrap(v, 1.7, 6), fontsize=6)
        ax.tick_params(labelsize=5)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    handles = [Line2D([], [], color=palette[t], label=t) for t in terms]
    spare = list(axes.flat)[len(variants):]
    if spare:  # the legend goes into the first empty panel, else below the panels
        spare[0].legend(handles=handles, loc="center", fontsize=6, frameon=False)
    else:
        fig.legend(handles=handles, loc="outside lower center", fontsize=6, frameon=False,
                   ncols=max(1, min(len(terms), int(fig.get_figwidth() / 1.3))))
    _suptitle(fig, f"{title}: loss terms vs step (mean over seeds)", 8)
    return _save(fig, stem)


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


def summary(panels: list[tuple[str, pd.DataFrame, list[str]]], stem: Path) -> list[Path]:
    """One figure a reader sees first: per dataset, Δ vs baseline of each variant on each
    headline metric, coloured by improvement (green better, red worse; scaled per column),
    annotated with Δ and * where the CI excludes 0."""
    panels = [(t, n, [m for m in ms if f"d_{m}" in n and n[f"d_{m}"].notna().any()])
              for t, n, ms in panels]
    panels = [(t, n[n[[f"d_{m}" for m in ms]].notna().any(axis=1)], ms) for t, n, ms in panels if ms]
    panels = [p for p in panels if len(p[1])]
    if not panels:
        return []
    height = max(2.4, 0.2 * max(len(n) for _, n, _ in panels) + 1.6)
    label_in = min(2.6, 0.3 + 0.055 * max(len(str(v)) for _, n, _ in panels for v in n["variant"]))
    panel_w = [label_in + 0.55 * len(ms) + 0.2 for _, _, ms in panels]
    fig, axes = _subplots(1, len(panels), (max(4.0, sum(panel_w)), height),
                          gridspec_kw={"width_ratios": panel_w})
    for ax, (title, n, ms), w in zip(axes[0], panels, panel_w):
        good = pd.DataFrame({m: n[f"d_{m}"].to_numpy(float) * (1 if direction(m) != "down" else -1)
                             for m in ms},
                            index=[_wrap(str(v), label_in, 6) for v in n["variant"]])
        scaled = good / good.abs().max().replace(0, 1)
        text = pd.DataFrame({m: [("" if not np.isfinite(d) else f"{d:+.2g}") + ("*" if s else "")
                                 for d, s in zip(n[f"d_{m}"], _significant(n, f"d_{m}"))]
                             for m in ms}, index=good.index)
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
              "better, red = worse, scaled per column; * = sign-flip p < 0.05)", 8)
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


def sample_sheet(entries: list[tuple[str, Path]], stem: Path, title: str
                 ) -> tuple[list[Path], list[str]]:
    """One contact sheet for a variant on one dataset: a titled panel per (panel title, sample
    file), e.g. one per seed, under `title`. PNG only (the samples are pixels). Returns the
    paths written and the panels drawn (a bad file is one warning line, its panel left out)."""
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
    cols = min(5, len(images))
    rows = math.ceil(len(images) / cols)
    # a fixed geometry (no layout engine: a sheet per variant, hundreds in a big store): square
    # panels, a title line above each, the wrapped figure title on top
    points = any(img.ndim == 3 and img.dtype != np.uint8 for _, img in images)
    what = ("density of the scored points, red + = mode centres" if points
            else f"{IMAGE_SAMPLES} generated images")
    panel, gap, pad = 1.5, 0.3, 0.1
    width = max(3.2, cols * (panel + pad) + pad)
    head = _wrap(f"{title}: samples ({what})", width - 0.3, 8)
    top = 0.1 + 0.15 * (head.count("\n") + 1)
    height = top + rows * (panel + gap) + pad
    fig = plt.figure(figsize=(width, height))
    axes = np.array([[fig.add_axes(((pad + c * (panel + pad) + (width - cols * (panel + pad) - pad)
                                      / 2) / width,
                                     (height - top - (r + 1) * (panel + gap)) / height,
                                     panel / width, panel / height))
                      for c in range(cols)] for r in range(rows)])
    for ax, (panel_title, img) in zip(axes.flat, images):
        ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0,
                  vmax=255 if img.dtype == np.uint8 else 1, interpolation="nearest")
        ax.set_title(_wrap(panel_title, panel, 7), fontsize=7, pad=3)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
    for ax in list(axes.flat)[len(images):]:
        ax.axis("off")
    fig.suptitle(head, fontsize=8, y=1 - 0.06 / height, va="top")
    stem.parent.mkdir(parents=True, exist_ok=True)
    for hook in ON_SAVE:
        hook(fig, stem)
    path = stem.with_name(stem.name + ".png")
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return [path], [t for t, _ in images]
