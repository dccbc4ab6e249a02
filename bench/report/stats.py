"""Statistics of the tables: mean ± std over seeds, paired deltas with t (or, from
BOOTSTRAP_MIN_N pairs on, BCa bootstrap) confidence intervals, the exact paired sign-flip
(permutation) test that the tables' * and Holm-adjusted p use, and factorial effects by least
squares on the ±1 design.

Why a sign-flip test: the headline scores are bounded and discrete (a mode count is 0..K and often
bimodal over seeds: a ring8 seed ends near 0 or near 8 modes), so the normal model behind a paired
t-test does not hold at 3-5 seeds, and a row whose differences have no spread (−8 modes on every
seed) has no t statistic at all. The sign-flip test needs only that, under "no effect", each seed's
difference is as likely to be +d as −d (the variant and the baseline are exchangeable within a
seed). It is exact: with n paired seeds it enumerates all 2**n sign patterns, so its smallest
two-sided p-value is 2 / 2**n (`sign_flip_floor`: 0.25 at 3 seeds, 0.0625 at 5, 0.031 at 6); a
row with no spread is tested like any other (p = 2 / 2**n when every difference has one sign)."""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.95
# Below this many pairs a bootstrap interval is too narrow to be a 95% CI (at n = 3 a percentile
# interval is [min, max] and excludes 0 for ~27% of null data): the paired t interval is used.
BOOTSTRAP_MIN_N = 10


@dataclass(frozen=True)
class Delta:
    """A paired difference over matched seeds: mean of (variant - reference) per seed."""

    delta: float
    lo: float  # confidence interval; NaN when undefined (n < 2 or no spread)
    hi: float
    n: int  # matched seeds with a finite value on both sides
    p: float  # two-sided paired t-test p-value; NaN when undefined
    method: str = ""  # of the interval: "t" or "bca" ("" without one)
    p_perm: float = math.nan  # two-sided exact paired sign-flip p-value (the tables' test)
    p_floor: float = math.nan  # the smallest p the sign-flip test can give at n (2 / 2**n)
    sd: float = math.nan  # sample sd of the differences (ddof 1; 0 without spread; power.py)

    @property
    def excludes_zero(self) -> bool:
        return bool(np.isfinite(self.lo) and np.isfinite(self.hi) and (self.lo > 0 or self.hi < 0))

    @property
    def significant(self) -> bool:
        """The tables' *: the paired sign-flip test rejects 0 at 1 - LEVEL (unadjusted; the
        Holm-adjusted p is printed beside it). It can disagree with the interval at a few seeds:
        at 5 seeds the test cannot go below p = 0.0625 however consistent the differences."""
        return bool(np.isfinite(self.p_perm) and self.p_perm < 1 - LEVEL)


NO_DELTA = Delta(math.nan, math.nan, math.nan, 0, math.nan)
# Exact enumeration of the 2**n sign patterns up to this n (65,536 patterns); Monte Carlo above.
EXACT_MAX_N = 16
PERM_RESAMPLES = 20_000


def sign_flip_floor(n: int) -> float:
    """The smallest two-sided p-value an exact paired sign-flip test can give with n pairs."""
    return math.nan if n < 1 else min(1.0, 2.0 / 2 ** n)


def sign_flip_p(d, *, seed: int = 0) -> float:
    """Two-sided paired sign-flip (permutation) test of mean(d) = 0: the share of sign patterns
    s (all 2**n of them up to EXACT_MAX_N differences, else PERM_RESAMPLES random ones plus the
    observed) with |mean(s * d)| >= |mean(d)|. NaN without differences; 1 when all are 0."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = d.size
    if n == 0:
        return math.nan
    observed = abs(float(d.mean()))
    tol = 1e-9 * max(1.0, observed)  # k/2500 - j/2500 differs in the last bits
    if n <= EXACT_MAX_N:
        signs = 1 - 2 * ((np.arange(2 ** n)[:, None] >> np.arange(n)) & 1)  # every pattern
        means = np.abs(signs @ d) / n
        return float(np.mean(means >= observed - tol))
    rng = np.random.default_rng(seed)
    signs = rng.choice(np.array([-1.0, 1.0]), size=(PERM_RESAMPLES, n))
    hits = int(np.sum(np.abs(signs @ d) / n >= observed - tol))
    return (hits + 1) / (PERM_RESAMPLES + 1)


def mean_std(values) -> tuple[float, float, int]:
    """Mean, sample std (ddof 1; NaN for one value) and n of the finite values."""
    v = np.asarray([x for x in values if x is not None], dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


def differences_ci(d, *, bootstrap: bool = False, level: float = LEVEL,
                   seed: int = 0) -> Delta:
    """Mean of per-seed differences `d` with a paired t interval and p-value, and the exact
    sign-flip p-value (`sign_flip_p`, defined for any n >= 1, spread or not); `bootstrap`: a BCa
    bootstrap interval instead where there are at least BOOTSTRAP_MIN_N differences."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n == 0:
        return NO_DELTA
    mean = float(d.mean())
    perm = {"p_perm": sign_flip_p(d, seed=seed), "p_floor": sign_flip_floor(n),
            "sd": float(d.std(ddof=1)) if n > 1 else math.nan}
    # no spread (up to rounding: k/2500 - j/2500 differs in the last bits): a t interval and
    # p-value are undefined, not "certain"; the sign-flip test still tests the row
    if n < 2 or float(np.ptp(d)) <= 1e-9 * max(1.0, abs(mean)):
        return Delta(mean, math.nan, math.nan, n, math.nan, **perm)
    sd = float(d.std(ddof=1))
    p = float(2 * stats.t.sf(abs(mean) / (sd / math.sqrt(n)), n - 1))  # = ttest_1samp(d, 0)
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n)
    lo, hi, method = mean - half, mean + half, "t"
    if bootstrap and n >= BOOTSTRAP_MIN_N:
        with warnings.catch_warnings():  # a degenerate case gives NaN, handled below
            warnings.simplefilter("ignore")  # also `random_state` renamed `rng` in scipy 1.15
            res = stats.bootstrap((d,), np.mean, confidence_level=level, method="BCa",
                                  n_resamples=9999, random_state=np.random.default_rng(seed))
        b_lo, b_hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(b_lo) and math.isfinite(b_hi):  # BCa degenerates on a few-valued d
            lo, hi, method = b_lo, b_hi, "bca"
    return Delta(mean, lo, hi, n, p, method, **perm)


def paired_delta(variant: pd.Series, reference: pd.Series, **kw) -> Delta:
    """Δ = variant − reference over the seeds both have (Series indexed by seed)."""
    joined = pd.concat([variant.rename("v"), reference.rename("r")], axis=1, join="inner")
    return differences_ci((joined["v"] - joined["r"]).to_numpy(dtype=float), **kw)


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN entries stay NaN and are not counted)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    idx = np.flatnonzero(np.isfinite(p))
    m = idx.size
    running = 0.0
    for rank, i in enumerate(idx[np.argsort(p[idx], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def holm_columns(frame: pd.DataFrame, columns: list[str]) -> dict[str, np.ndarray]:
    """Holm over every finite p in `columns` of `frame` together (one family: all rows × all
    columns), returned per column."""
    if not columns or frame.empty:
        return {c: np.full(len(frame), math.nan) for c in columns}
    block = frame[columns].to_numpy(dtype=float)
    adjusted = holm(block.ravel()).reshape(block.shape)
    return {c: adjusted[:, j] for j, c in enumerate(columns)}


@dataclass
class Effects:
    """Main effects and two-factor interactions of a two-level design."""

    table: pd.DataFrame  # index: effect name; columns effect, se, lo, hi, p, aliases
    aliased: dict[str, str] = field(default_factory=dict)  # dropped effect -> kept one it equals
    unestimable: list[str] = field(default_factory=list)  # dropped, aliased with nothing kept
    dof: int = 0


def factorial_effects(factors: pd.DataFrame, y, *, interactions: bool = True,
                      level: float = LEVEL) -> Effects:
    """Least squares on the ±1 coded design (0/1 factors are recoded). An effect is the change of
    y from the low to the high level (2 × the coefficient); its standard error comes from the
    residual variance. Columns that are linear combinations of earlier ones (aliases in a
    fractional design, or runs lost to conflicts) are dropped and named."""
    y = np.asarray(y, dtype=float)
    keep = np.isfinite(y)
    X = 2 * factors.to_numpy(dtype=float)[keep] - 1
    y = y[keep]
    names = list(factors.columns)
    cols = {"mean": np.ones(len(y))}
    cols.update({n: X[:, i] for i, n in enumerate(names)})
    if interactions:
        for (i, a), (j, b) in itertools.combinations(enumerate(names), 2):
            cols[f"{a}:{b}"] = X[:, i] * X[:, j]
    kept: list[str] = []
    aliased: dict[str, str] = {}
    unestimable: list[str] = []
    for name, col in cols.items():
        trial = np.column_stack([cols[k] for k in kept] + [col])
        if np.linalg.matrix_rank(trial) > len(kept):
            kept.append(name)
            continue
        twin = next((k for k in kept if np.allclose(cols[k], col) or np.allclose(cols[k], -col)),
                    None)
        if twin is not None:
            aliased[name] = twin
        else:
            unestimable.append(name)
    A = np.column_stack([cols[k] for k in kept]) if kept else np.zeros((len(y), 0))
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    dof = len(y) - len(kept)
    rows = []
    if dof > 0:
        sigma2 = float(np.sum((y - A @ coef) ** 2)) / dof
        se = np.sqrt(np.diag(sigma2 * np.linalg.inv(A.T @ A)))
        tcrit = float(stats.t.ppf(0.5 + level / 2, dof))
    else:
        se, tcrit = np.full(len(kept), math.nan), math.nan
    for k, b, s in zip(kept, coef, se):
        if k == "mean":
            continue
        effect, err = 2 * float(b), 2 * float(s)
        p = float(2 * stats.t.sf(abs(effect / err), dof)) if dof > 0 and err > 0 else math.nan
        also = [a for a, twin in aliased.items() if twin == k]
        rows.append({"effect_name": k, "effect": effect, "se": err, "lo": effect - tcrit * err,
                     "hi": effect + tcrit * err, "p": p, "aliases": ", ".join(also)})
    table = pd.DataFrame(rows).set_index("effect_name") if rows else pd.DataFrame(
        columns=["effect", "se", "lo", "hi", "p", "aliases"])
    return Effects(table, aliased, unestimable, dof)
