"""The compute column of the tables: what a row cost, beside what it achieved. Train seconds per
cell (the median over its scored seeds, as measured on the machine that ran it; curve scoring
and the final evaluation excluded), the steps, and the network updates per step relative to the
baseline's (the tricks' declared `step_cost`, stored with the grid membership; 1 for the
baseline) -- under a grid's `budget = "evals"` the steps are scaled so that steps x cost is the
same for every row."""
from __future__ import annotations

import math

import pandas as pd

from bench.report.tables import num

COLUMN = "compute: train s/cell (steps × cost)"


def compute_record(rows: pd.DataFrame) -> dict:
    """The numbers of one row (CSV columns): train_s (median per scored cell), steps and
    step_cost (updates per step relative to the baseline's)."""
    done = rows[rows["status"] == "done"]
    train = pd.to_numeric(done.get("train_s"), errors="coerce").dropna() if len(done) else []
    steps = rows["steps"].dropna() if "steps" in rows else []
    cost = rows["step_cost"].dropna() if "step_cost" in rows else []
    return {"train_s": float(pd.Series(train).median()) if len(train) else math.nan,
            "steps": int(steps.iloc[0]) if len(steps) else None,
            "step_cost": float(cost.iloc[0]) if len(cost) else math.nan}


def compute_text(rec: dict) -> str:
    """'7.1 s (600 × 1)', '6.9 s (100 × 6)': seconds, then steps × cost per step."""
    secs = rec.get("train_s", math.nan)
    head = "–" if secs is None or not math.isfinite(secs) else f"{num(secs)} s"
    steps, cost = rec.get("steps"), rec.get("step_cost", math.nan)
    if steps is None:
        return head
    cost_text = num(cost) if cost is not None and math.isfinite(cost) else "?"
    return f"{head} ({steps} × {cost_text})"
