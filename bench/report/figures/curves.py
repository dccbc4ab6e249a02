"""The curve figures: each eval_* metric vs step per variant (band over seeds, baseline and
reference rows in every panel) and the logged loss terms vs step per variant."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from bench.report.figures.panels import _lim, _PanelGrid
from bench.report.figures.style import _save

# reference rows in the metric-curve panels (bench.report.references)
REFERENCE_COLOURS = {"chance": "tab:red", "degraded": "tab:orange", "ceiling": "tab:green"}


def long_curves(rows: pd.DataFrame) -> pd.DataFrame:
    """Every stored curve point of `rows` (one row per cell) as (variant, seed, curve, step,
    value)."""
    out = []
    for label, seed, curves in zip(rows["row_label"], rows["seed"], rows["curves"]):
        for name, points in (curves or {}).items():
            out += [(label, seed, name, step, value) for step, value in points]
    return pd.DataFrame(out, columns=["variant", "seed", "curve", "step", "value"])


def metric_curves(rows: pd.DataFrame | None, stem: Path, title: str, lines=None,
                  data: pd.DataFrame | None = None) -> list[Path]:
    """Each eval_* curve per variant (one panel each), mean over seeds with a ±1 sd band; the
    baseline in grey in every panel. `lines`: {metric: [(label, role, mean, sd)]}, reference
    rows drawn in every panel of their metric (bench.report.references.curve_lines). `data`:
    `long_curves(rows)`, when the caller has it."""
    data = long_curves(rows) if data is None else data
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
    `data`: `long_curves(rows)`, when the caller has it."""
    data = long_curves(rows) if data is None else data
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
