"""Aggregate statistics across seeds and datasets (Agarwal et al. 2021, "Deep RL at the edge of the
statistical precipice"; the definitions of the `rliable` package, google-research/rliable 1.2.0,
re-implemented here because rliable needs `arch` < 8, whose releases do not import with the
pandas this suite installs):

- `iqm`: the interquartile mean, scipy.stats.trim_mean(scores, 0.25) over every run of every task
  pooled (rliable's `aggregate_iqm`);
- `stratified_bootstrap`: percentile intervals from resampling the runs of each task (here: each
  dataset) with replacement, independently per task (rliable's `StratifiedBootstrap`,
  method "percentile"); tasks may have different numbers of runs;
- `probability_of_improvement`: P(X > Y) per task as the Mann-Whitney U statistic / (n_x n_y)
  (ties count one half), averaged over tasks (rliable's `probability_of_improvement`), with an
  interval from resampling X's and Y's runs independently within each task
  (rliable's `StratifiedIndependentBootstrap`);
- `performance_profile`: the share of runs (all tasks pooled) whose score exceeds each threshold
  tau (rliable's `create_performance_profile` with score distributions), with pointwise intervals.

Scores are comparable across datasets only after normalising: `normalised_scores` gives the mode
count over the dataset's number of modes (`protocol.num_modes`: 8 for ring8, 25 for grid25, 10
classes for digits) and the 2-D high-quality share (already a fraction).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy import stats as sst

LEVEL = 0.95
REPS = 2000  # rliable's default number of bootstrap replications
TRIM = 0.25


def _tasks(tasks: Sequence) -> list[np.ndarray]:
    out = []
    for t in tasks:
        a = np.asarray(t, dtype=float).ravel()
        a = a[np.isfinite(a)]
        if a.size:
            out.append(a)
    return out


def iqm(tasks: Sequence) -> float:
    """Interquartile mean of every run of every task pooled (NaN without runs)."""
    runs = _tasks(tasks)
    if not runs:
        return math.nan
    return float(sst.trim_mean(np.concatenate(runs), TRIM, axis=None))


def _iqm_rows(matrix: np.ndarray) -> np.ndarray:
    """trim_mean(…, 0.25) of each row of a (reps, N) matrix, vectorised (same cut as scipy)."""
    n = matrix.shape[1]
    cut = int(TRIM * n)
    ordered = np.sort(matrix, axis=1)
    return ordered[:, cut:n - cut].mean(axis=1)


def _resample(runs: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    return runs[rng.integers(0, runs.size, size=(reps, runs.size))]


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    a = (1 - level) / 2
    lo, hi = np.percentile(draws, [100 * a, 100 * (1 - a)], axis=0)
    return lo, hi


@dataclass(frozen=True)
class Estimate:
    value: float
    lo: float
    hi: float
    runs: int  # runs behind it (all tasks; for a probability of improvement, X's)
    tasks: int


NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0, 0)


def iqm_interval(tasks: Sequence, *, reps: int = REPS, seed: int = 0,
                 level: float = LEVEL) -> Estimate:
    """IQM with a stratified-bootstrap percentile interval (runs resampled within each task)."""
    runs = _tasks(tasks)
    if not runs:
        return NO_ESTIMATE
    rng = np.random.default_rng(seed)
    draws = _iqm_rows(np.concatenate([_resample(t, reps, rng) for t in runs], axis=1))
    lo, hi = percentile_interval(draws, level)
    return Estimate(iqm(runs), float(lo), float(hi), sum(t.size for t in runs), len(runs))


def _poi_task(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 for the last two axes of resampled runs ((..., nx) vs (..., ny))."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-2, -1))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-2, -1))
    return gt + 0.5 * eq


def probability_of_improvement(x_tasks: Sequence, y_tasks: Sequence) -> float:
    """P(X > Y) averaged over the tasks both have runs on (x_tasks[i] pairs with y_tasks[i]);
    for a metric where lower is better, pass the negated scores."""
    pairs = [(x, y) for x, y in zip(_tasks_keep(x_tasks), _tasks_keep(y_tasks))
             if x.size and y.size]
    if not pairs:
        return math.nan
    return float(np.mean([_poi_task(x, y) for x, y in pairs]))


def _tasks_keep(tasks: Sequence) -> list[np.ndarray]:
    """Like `_tasks` but keeps empty tasks in place (so two lists stay aligned)."""
    out = []
    for t in tasks:
        a = np.asarray(t, dtype=float).ravel()
        out.append(a[np.isfinite(a)])
    return out


def poi_interval(x_tasks: Sequence, y_tasks: Sequence, *, reps: int = REPS, seed: int = 0,
                 level: float = LEVEL) -> Estimate:
    """Probability of improvement with a percentile interval from resampling X's and Y's runs
    independently within each task."""
    pairs = [(x, y) for x, y in zip(_tasks_keep(x_tasks), _tasks_keep(y_tasks))
             if x.size and y.size]
    if not pairs:
        return NO_ESTIMATE
    rng = np.random.default_rng(seed)
    draws = np.mean([_poi_task(_resample(x, reps, rng), _resample(y, reps, rng))
                     for x, y in pairs], axis=0)
    lo, hi = percentile_interval(draws, level)
    value = float(np.mean([_poi_task(x, y) for x, y in pairs]))
    return Estimate(value, float(lo), float(hi), sum(x.size for x, _ in pairs), len(pairs))


def performance_profile(tasks: Sequence, taus: Sequence[float], *, reps: int = REPS,
                        seed: int = 0, level: float = LEVEL
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Share of runs (all tasks pooled) with score > tau, for each tau, and its pointwise
    stratified-bootstrap percentile interval: (profile, lo, hi)."""
    taus = np.asarray(taus, dtype=float)
    runs = _tasks(tasks)
    if not runs:
        nan = np.full(taus.shape, math.nan)
        return nan, nan, nan
    pooled = np.concatenate(runs)
    profile = (pooled[:, None] > taus[None, :]).mean(axis=0)
    rng = np.random.default_rng(seed)
    sample = np.concatenate([_resample(t, reps, rng) for t in runs], axis=1)  # (reps, N)
    draws = (sample[:, :, None] > taus[None, None, :]).mean(axis=1)  # (reps, taus)
    lo, hi = percentile_interval(draws, level)
    return profile, np.asarray(lo), np.asarray(hi)


# -- scores comparable across datasets --------------------------------------------------------
def _num_modes(row) -> float:
    proto = row.get("protocol") if hasattr(row, "get") else None
    k = proto.get("num_modes") if isinstance(proto, dict) else None
    return float(k) if k else math.nan


# name -> (what it is, function(row) -> normalised score or NaN); every one is "higher is better"
NORMALISED: dict[str, tuple[str, Callable]] = {
    "modes/K": ("modes covered / the dataset's number of modes K",
                lambda r: float(r["modes"]) / _num_modes(r)
                if "modes" in r and r["modes"] == r["modes"] else math.nan),
    "high_quality": ("share of high-quality samples (2-D)",
                     lambda r: float(r["high_quality"])
                     if "high_quality" in r and r["high_quality"] == r["high_quality"]
                     else math.nan),
}


def normalised_scores(rows, name: str) -> np.ndarray:
    """The scored seeds' normalised scores of one variant's rows (one per seed)."""
    cols = [c for c in ("seed", "modes", "high_quality", "protocol") if c in rows]
    done = rows.loc[rows["status"] == "done", cols].drop_duplicates("seed")
    fn = NORMALISED[name][1]
    vals = np.array([fn(r) for r in done.to_dict("records")], dtype=float)
    return vals[np.isfinite(vals)]
