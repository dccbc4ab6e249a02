"""Seeds by power (issue 21, item 8): from the seed variances a table stores, the smallest Δ it can
detect at 80 % power and the seeds a 1-mode effect would need.

The spread is the pooled sd of the table's paired differences (each row's differences against its
reference, pooled with n_i − 1 degrees of freedom). Power is that of the two-sided paired t-test at
α = 0.05 (noncentral t), the usual planning approximation; the exact sign-flip test the tables use
has about the same power once it can reach α at all, which needs 2 / 2**n < α, i.e. n ≥ 6 seeds
(`MIN_SEEDS`). Seeds needed = the smallest n ≥ MIN_SEEDS with power ≥ 80 %; `holm_m` also gives
the n for Holm's first step over a table of m claims (α / m)."""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize
from scipy import stats as sst

ALPHA = 0.05
POWER = 0.80
MAX_SEEDS = 1000


def min_seeds(alpha: float = ALPHA) -> int:
    """The fewest pairs at which an exact sign-flip test can give p < alpha (2 / 2**n < alpha)."""
    return int(math.floor(math.log2(2 / alpha))) + 1


MIN_SEEDS = min_seeds()  # 6 at alpha 0.05


def pooled_sd(sds, ns) -> float:
    """Pooled sd of several samples' differences: sqrt(Σ (n_i − 1) s_i² / Σ (n_i − 1))."""
    num = den = 0.0
    for s, n in zip(sds, ns):
        if n is None or not (s == s) or n < 2:
            continue
        num += (n - 1) * float(s) ** 2
        den += n - 1
    return math.sqrt(num / den) if den > 0 else math.nan


def t_power(n: int, effect: float, sd: float, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired t-test with n pairs to detect a mean difference `effect`."""
    if n < 2 or not (sd > 0):
        return math.nan
    df = n - 1
    crit = sst.t.ppf(1 - alpha / 2, df)
    nc = abs(effect) / sd * math.sqrt(n)
    value = float(sst.nct.sf(crit, df, nc) + sst.nct.cdf(-crit, df, nc))
    if not math.isfinite(value):  # far in the tail, where scipy's nct gives NaN: certain
        return 1.0 if nc > crit else 0.0
    return min(1.0, value)


def detectable(n: int, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The smallest |Δ| detected with `power` by n pairs at `alpha` (NaN when undefined)."""
    if n < 2 or not (sd > 0) or not math.isfinite(sd):
        return math.nan
    f = lambda e: t_power(n, e, sd, alpha) - power  # noqa: E731
    hi = sd
    while f(hi) < 0:
        hi *= 2
        if hi > 1e6 * sd:
            return math.nan
    return float(optimize.brentq(f, 0.0, hi, xtol=1e-10 * sd))


def seeds_needed(effect: float, sd: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """The fewest pairs (>= the sign-flip test's minimum at alpha) detecting `effect` with
    `power`; inf past MAX_SEEDS, NaN without a spread estimate."""
    if not (sd > 0) or not math.isfinite(sd):
        return math.nan
    for n in range(max(2, min_seeds(alpha)), MAX_SEEDS + 1):
        if t_power(n, effect, sd, alpha) >= power:
            return n
    return math.inf


def table_power(numbers, metric: str) -> dict:
    """Power numbers of one delta table's `metric` (its CSV frame: d_<m>_sd and d_<m>_n)."""
    sd_col, n_col = f"d_{metric}_sd", f"d_{metric}_n"
    if sd_col not in numbers or n_col not in numbers:
        return {}
    ns = [int(x) for x in numbers[n_col].fillna(0)]
    tested = [n for n in ns if n > 0]
    if not tested:
        return {}
    n = int(np.median(tested))
    sd = pooled_sd(numbers[sd_col], ns)
    return {"metric": metric, "n": n, "rows": len(tested), "sd_diff": sd,
            "detectable": detectable(n, sd), "floor": min(1.0, 2 / 2 ** n),
            "seeds_1": seeds_needed(1.0, sd) if metric.startswith("modes") else math.nan}
