"""Budget sensitivity (issue 19, Must 5): each Δ recomputed at half the training budget from the
stored eval curves (`curves["eval_<metric>"]`, [[step, value], ...], scored during training), and
the *fragile* mark where the conclusion changes between half and full budget: the sign-flip test
(unadjusted, 0.05) shows an effect at one budget and not at the other, or effects of opposite
signs.

A cell's half-budget score is its curve's value at the last logged step <= half its own steps
(`budget = "time"` / `"evals"` give each trick its own steps, so each row is read at its own
half). Curves are scored on the protocol's curve samples, which may be fewer than the final
score's: the half Δ is the Δ of the curves, the full Δ the table's."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.report import stats

MARK = " ‡"
NOTE = ("‡ fragile: at half the training budget (each cell's stored eval curve at its last "
        "logged step ≤ half its steps) the sign-flip test (p < 0.05, unadjusted) decides "
        "differently: an effect at one budget and none, or one of the opposite sign, at the "
        "other; the conclusion depends on the budget.")


def half_value(row: pd.Series | dict, metric: str) -> float:
    """One cell's `metric` at half its training steps from its stored curve (NaN without one)."""
    curve = (row.get("curves") or {}).get(f"eval_{metric}")
    steps = row.get("steps")
    if not curve or steps is None or not (steps == steps):
        return math.nan
    half = float(steps) / 2
    before = [v for s, v in curve if s <= half and v is not None]
    return float(before[-1]) if before else math.nan


def half_by_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    cols = [c for c in ("seed", "steps", "curves") if c in rows]
    done = rows.loc[rows["status"] == "done", cols].drop_duplicates("seed")
    return pd.Series([half_value(r, metric) for r in done.to_dict("records")],
                     index=done["seed"].to_numpy(), dtype=float)


@dataclass(frozen=True)
class Sensitivity:
    half: stats.Delta
    fragile: bool


def sensitivity(full: stats.Delta, rows: pd.DataFrame, ref: pd.DataFrame | None, metric: str,
                reverse: bool = False) -> Sensitivity:
    """The half-budget Δ of `rows` against `ref` and whether `full` is fragile."""
    if ref is None or full.n == 0:
        return Sensitivity(stats.NO_DELTA, False)
    a, b = half_by_seed(rows, metric), half_by_seed(ref, metric)
    half = stats.paired_delta(b, a) if reverse else stats.paired_delta(a, b)
    return Sensitivity(half, is_fragile(full, half))


def decision(d: stats.Delta) -> int:
    """The conclusion a Δ supports: its sign where the sign-flip test rejects 0 at 0.05
    (unadjusted), else 0 (no effect shown)."""
    if d.n == 0 or not math.isfinite(d.delta) or not d.significant:
        return 0
    return 1 if d.delta > 0 else -1 if d.delta < 0 else 0


def is_fragile(full: stats.Delta, half: stats.Delta) -> bool:
    """The conclusion changes between half and full budget: a significant sign at one budget
    and another sign, or no significant one, at the other. A point estimate whose sign flips
    while neither budget shows an effect is no conclusion to be fragile (the half-budget Δ is
    printed beside it all the same)."""
    if full.n == 0 or half.n == 0 or not (math.isfinite(full.delta) and math.isfinite(half.delta)):
        return False
    return decision(full) != decision(half)


def flips(values_full: np.ndarray, values_half: np.ndarray) -> bool:
    """Sign of the mean flips (a helper for tests on synthetic curves)."""
    return bool(np.sign(np.mean(values_full)) * np.sign(np.mean(values_half)) < 0)
