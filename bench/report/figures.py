"""Figures of the report (seaborn on matplotlib's Agg backend; PNG and PDF, modest size).

Each function writes `<stem>.png` and `<stem>.pdf` (sample grids: PNG only, one per cell) and
returns the paths it wrote, or [] when the data has nothing to plot."""
from __future__ import annotations

import math
import warnings
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.report.stats import LEVEL  # noqa: E402
from bench.store.results import direction  # noqa: E402
from bench.store.samples import IMAGE_SAMPLES, tile_images  # noqa: E402  (torch-free parts)

DPI = 80
# reference rows in the metric-curve panels (bench.report.references)
REFERENCE_COLOURS = {"chance": "tab:red", "degraded": "tab:orange", "ceiling": "tab:green"}
MAX_PNG_BYTES = 150_000
sns.set_theme(style="whitegrid", context="paper", font_scale=0.9)


def _save(fig, stem: Path, pdf: bool = True) -> list[Path]:
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png")]
    dpi = DPI
    with warnings.catch_warnings():  # one layout pass; constrained layout costs twice as much
        warnings.simplefilter("error", UserWarning)
        try:
            fig.tight_layout()
        except UserWarning:  # tight layout gave up (crowded figure): the slower, surer engine
            fig.set_layout_engine("constrained")
    fig.savefig(paths[0], dpi=dpi)
    while paths[0].stat().st_size > MAX_PNG_BYTES and dpi > 40:  # big grids: fewer pixels
        dpi = int(dpi * 0.8)
        fig.savefig(paths[0], dpi=dpi)
    if pdf:
        paths.append(stem.with_suffix(".pdf"))
        fig.savefig(paths[1])
    plt.close(fig)
    return paths


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
    """Δ with its 95% CI per variant (one panel per headline metric); filled = the tables' *."""
    metrics = [m for m in metrics if f"{prefix}_{m}" in numbers and numbers[f"{prefix}_{m}"].notna().any()]
    if not metrics:
        return []
    names = numbers["variant"] if "variant" in numbers else numbers.iloc[:, 0]
    keep = numbers[[f"{prefix}_{m}" for m in metrics]].notna().any(axis=1)
    rows, names = numbers[keep], list(names[keep])
    height = 0.8 + 0.22 * len(rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(2.6 * len(metrics), height), sharey=True,
                             squeeze=False)
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
        ax.set_title(f"{m} ({'↑' if good > 0 else '↓'})", fontsize=8)
        ax.set_xlabel(label, fontsize=7)
    axes[0][0].set_yticks(y, names, fontsize=7)
    fig.suptitle(title, fontsize=9)
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
        fig, axes = plt.subplots(nrows, cols, figsize=(1.7 * cols, 1.3 * nrows + 0.4),
                                 sharex=True, sharey=True, squeeze=False)
        for ax, v in zip(axes.flat, variants):
            for sub, colour in ((base, "0.6"), (part[part["variant"] == v], "tab:blue")):
                if sub.empty:
                    continue
                g = sub.groupby("step")["value"].agg(["mean", "std"]).fillna(0)
                ax.plot(g.index, g["mean"], color=colour, lw=1)
                ax.fill_between(g.index, g["mean"] - g["std"], g["mean"] + g["std"],
                                color=colour, alpha=0.25, lw=0)
            for _, role, mean, sd in (lines or {}).get(curve[5:], []):
                colour = REFERENCE_COLOURS.get(role, "tab:purple")
                ax.axhline(mean, color=colour, lw=0.8, ls=":")
                ax.axhspan(mean - sd, mean + sd, color=colour, alpha=0.12, lw=0)
            ax.set_title(v, fontsize=6)
            ax.tick_params(labelsize=5)
        for ax in list(axes.flat)[len(variants):]:
            ax.axis("off")
        roles = Counter(role for _, role, *_ in (lines or {}).get(curve[5:], []))
        refs = "; dotted: " + ", ".join(  # the rows are named in the tables
            f"{REFERENCE_COLOURS.get(r, 'tab:purple')[4:]} {r}" + (f" ×{k}" if k > 1 else "")
            for r, k in roles.items()) if roles else ""
        fig.suptitle(f"{title}: {curve[5:]} vs step (grey: baseline; band: ±1 sd over seeds"
                     f"{refs})", fontsize=8)
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
    fig, axes = plt.subplots(nrows, cols, figsize=(1.7 * cols, 1.3 * nrows + 0.6), sharex=True,
                             squeeze=False)
    terms = sorted(data["curve"].unique())
    palette = dict(zip(terms, sns.color_palette("tab10", len(terms))))
    for ax, v in zip(axes.flat, variants):
        g = data[data["variant"] == v].groupby(["curve", "step"])["value"].mean()
        for term in g.index.get_level_values(0).unique():
            s = g.loc[term]
            ax.plot(s.index, s.to_numpy(), lw=0.8, color=palette[term], label=term)
        ax.set_title(v, fontsize=6)
        ax.tick_params(labelsize=5)
    for ax in list(axes.flat)[len(variants):]:
        ax.axis("off")
    handles = [plt.Line2D([], [], color=palette[t], label=t) for t in terms]
    spare = list(axes.flat)[len(variants):]
    if spare:  # the legend goes into the first empty panel, else into the first one
        spare[0].legend(handles=handles, loc="center", fontsize=6, frameon=False)
    else:
        axes.flat[0].legend(handles=handles, fontsize=5, loc="best")
    fig.suptitle(f"{title}: loss terms vs step (mean over seeds)", fontsize=8)
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
    size = 1.2 + 0.45 * len(tricks)
    cols = min(4, len(points))
    fig, axes = plt.subplots(math.ceil(len(points) / cols), cols,
                             figsize=((size + 1) * cols, size * math.ceil(len(points) / cols)),
                             squeeze=False)
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
        ax.tick_params(labelsize=6)
        if point:
            ax.set_title(point, fontsize=7)
    fig.suptitle(f"{title}: interaction on {metric}\n(blue = better together than alone; "
                 "* paired t p < 0.05; blank: not run or conflict)", fontsize=8)
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
    height = max(2.0, 0.2 * max(len(n) for _, n, _ in panels) + 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), height), squeeze=False)
    for ax, (title, n, ms) in zip(axes[0], panels):
        good = pd.DataFrame({m: n[f"d_{m}"].to_numpy(float) * (1 if direction(m) != "down" else -1)
                             for m in ms}, index=list(n["variant"]))
        scaled = good / good.abs().max().replace(0, 1)
        text = pd.DataFrame({m: [("" if not np.isfinite(d) else f"{d:+.2g}") + ("*" if s else "")
                                 for d, s in zip(n[f"d_{m}"], _significant(n, f"d_{m}"))]
                             for m in ms}, index=good.index)
        sns.heatmap(scaled, annot=text, fmt="", cmap="RdYlGn", vmin=-1, vmax=1, cbar=False, ax=ax,
                    annot_kws={"fontsize": 5.5})
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
    fig.suptitle("Δ vs baseline (paired over seeds; green = better, * = paired t p < 0.05)",
                 fontsize=8)
    return _save(fig, stem)


def sample_figure(sample_file: Path, stem: Path, title: str = "") -> list[Path]:
    """A cell's samples as a PNG written straight from pixels (fast for hundreds of cells): an
    image grid (2x nearest upscaling), or for 2-D points a 160x160 density image of the points
    (dark) over the square that holds the mode centres (red)."""
    from bench.store.samples import read_samples  # checked: SampleError, one line

    data = read_samples(sample_file)
    stem.parent.mkdir(parents=True, exist_ok=True)
    path = stem.with_suffix(".png")
    if "images" in data:
        grid = tile_images(data["images"][:IMAGE_SAMPLES])
        plt.imsave(path, grid[..., 0] if grid.shape[2] == 1 else grid,
                   cmap="gray" if grid.shape[2] == 1 else None, vmin=0, vmax=255)
        return [path]
    if "points" not in data:
        return []
    pts = np.asarray(data["points"], dtype=float)
    centres = np.asarray(data.get("centres", pts[:0]), dtype=float)
    ref = centres if len(centres) else pts
    lim = 1.25 * float(np.abs(ref).max()) if len(ref) else 1.0
    size = 160
    hist, _, _ = np.histogram2d(pts[:, 1], pts[:, 0], bins=size, range=[[-lim, lim], [-lim, lim]])
    shade = 1 - np.clip(np.log1p(hist) / max(np.log1p(hist).max(), 1e-9), 0, 1) * 0.9
    rgb = np.repeat(shade[::-1, :, None], 3, axis=2)
    for x, y in centres:
        i = int((lim - y) / (2 * lim) * size)
        j = int((x + lim) / (2 * lim) * size)
        rgb[max(i - 2, 0):i + 3, j, :] = (0.85, 0.1, 0.1)
        rgb[i, max(j - 2, 0):j + 3, :] = (0.85, 0.1, 0.1)
    plt.imsave(path, rgb)
    return [path]
