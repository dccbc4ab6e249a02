"""The units a study table reads: one per (grid, dataset), with its single-trick variants, its
baselines and the metric its verdict tests (bench.report.study)."""
from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from bench.report import tuned
from bench.report.pairing import baseline_of
from bench.report.rows import claim_metric, labels, light, primary_of

SINGLE = ("add-one", "baseline", "cells")


@dataclass
class Unit:
    """One (grid, dataset): the rows a verdict reads and how each finds its baseline."""

    grid: str
    data: str
    pool: pd.DataFrame
    part: pd.DataFrame
    reference: object  # (rows, pool) -> baseline rows or None
    held_out: bool
    metric: str
    groups: list = field(default_factory=list)  # single-trick variants' rows
    baselines: list = field(default_factory=list)  # every baseline group (one per setup)
    pre_registered: bool = False  # `metric` is the grid's primary for this dataset


def units(df: pd.DataFrame, specs: dict | None = None) -> list[Unit]:
    """Every (grid, dataset) with a baseline and single-trick variants (held-out evaluation rows
    where the grid tunes on held-out seeds). `df`: the per-membership table
    (`load_records(..., memberships=True)`); `specs`: {grid: spec} (`Catalog.grids`)."""
    from bench.report.views import variants

    out = []
    specs = specs or {}
    if df is None or df.empty:
        return out
    df = light(df)  # fast selections (rows.light)
    for (grid, data), pool in df.groupby(["grid", "data"], sort=False):
        held = tuned.is_held_out(pool)
        if held:
            part, ref = tuned.held_out_rows(pool), tuned.held_out_baseline
        else:
            part = pool[pool["design"].isin(SINGLE)]
            evals_budget = specs.get(grid, {}).get("budget") == "evals"
            ref = tuned.budget_baseline if evals_budget else baseline_of
        part = part.drop_duplicates("cell_id")
        if part.empty:
            continue
        groups = variants(part)
        # row labels that tell setups apart ('batch_norm [lr=0.0005]'), as the tables do
        for g, name in zip(groups, labels(groups, shown_too=("lr",) if held else ())):
            g.attrs = {"study_label": name}
        singles = [g for g in groups if len(g["tricks"].iloc[0]) == 1]
        bases = [g for g in groups if g["tricks"].iloc[0] == ()]
        if not singles or not bases:
            continue
        primary = primary_of(specs.get(grid, {}), pool["dataset"].iloc[0])
        metric = claim_metric(specs.get(grid, {}), part, pool)
        if metric not in pool or not pool[metric].notna().any():
            continue
        out.append(Unit(grid, data, pool, part, ref, held, metric, singles, bases,
                        pre_registered=primary is not None))
    return out


def _label(rows: pd.DataFrame) -> str:
    return rows.attrs.get("study_label") or rows["row_label"].iloc[0]


def _blocked(rows: pd.DataFrame) -> str | None:
    if set(rows["status"]) <= {"not-applicable", "conflict"}:
        return rows["reason"].iloc[0] or rows["status"].iloc[0]
    return None
