"""The effect figures: the forest plot of Δ with its CI per table, the summary heatmap of every
trick on every headline metric, and the pairs' interaction heatmap. Significance is the tables'
* (`_significant`), and only on the metrics the tables claim (`_heads_and_claims`: the grid's
pre-registered primary where it sets one, else every headline metric)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D

from bench.report.figures.style import _save, _subplots, _suptitle, _wrap
from bench.report.rows import heads_and_claims
from bench.report.stats import LEVEL
from bench.store.results import direction


def _heads_and_claims(numbers: pd.DataFrame, metrics: list[str], primary: str | None,
                      prefix: str = "d") -> tuple[list[str], list[str]]:
    """The panels' metrics and the claimed ones, as the tables decide (rows.heads_and_claims):
    the primary where the table holds its Δ."""
    return heads_and_claims(metrics, primary, f"{prefix}_{primary}" in numbers)


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
    with it only that metric's Δs are claims (`_heads_and_claims`), and the other panels are secondary:
    every marker grey and hollow, the panel titled "secondary, not tested", as the tables leave
    their Δs without a *. None (no primary): every panel's Δs are claims."""
    metrics, claims = _heads_and_claims(numbers, metrics, primary, prefix)
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
    panels = [(t, n, *_heads_and_claims(n, ms, p[0] if p else None)) for t, n, ms, *p in panels]
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
