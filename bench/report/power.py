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


# -- from stored records: `python -m bench.report.power RECORDS.jsonl|STORE ...` ---------------
def from_records(records) -> list[dict]:
    """Per setup (dataset, steps, G/D lr, batch): the pooled sd of the paired mode-count
    differences (each single-trick variant minus the baseline, matched seeds), with the smallest
    detectable Δ at the seeds stored, at 5 and at 8 seeds, and the seeds 1 and 2 modes need.
    `records`: dicts as in a records.jsonl (config, status, metrics)."""
    from collections import defaultdict

    from bench.report.stats import differences_ci

    by: dict = defaultdict(dict)
    for r in records:
        c = r.get("config") or {}
        if r.get("status") != "done" or "modes" not in (r.get("metrics") or {}):
            continue
        t = c["train"]
        key = (c["data"]["name"], t["steps"], t["g_optim"]["lr"], t["d_optim"]["lr"],
               t["batch_size"])
        label = ",".join(x["name"] for x in c.get("tricks") or []) or "baseline"
        by[key, label][c["seed"]] = float(r["metrics"]["modes"])
    groups: dict = defaultdict(list)
    for (key, label), v in by.items():
        base = by.get((key, "baseline"))
        if label == "baseline" or not base:
            continue
        d = [v[s] - base[s] for s in v if s in base]
        if len(d) > 1:
            delta = differences_ci(d)
            groups[key].append((delta.sd, delta.n))
    out = []
    for key, sds in groups.items():
        sd = pooled_sd([s for s, _ in sds], [n for _, n in sds])
        n = max(n for _, n in sds)
        out.append({"data": key[0], "steps": key[1], "lr_g": key[2], "lr_d": key[3],
                    "batch": key[4], "rows": len(sds), "n": n, "sd_diff": sd,
                    "detectable_n": detectable(n, sd), "detectable_5": detectable(5, sd),
                    "detectable_8": detectable(8, sd), "seeds_1_mode": seeds_needed(1.0, sd),
                    "seeds_2_modes": seeds_needed(2.0, sd)})
    return out


def main(argv=None) -> int:
    import argparse
    import json
    import sqlite3
    import sys
    from pathlib import Path

    from bench.store.db import StoreError

    ap = argparse.ArgumentParser(prog="python -m bench.report.power", description=(
        "Seeds by power: from stored records (a records.jsonl, or a store folder), the smallest "
        "mode-count Δ detectable at 80% power and the paired seeds a 1- or 2-mode effect needs."))
    ap.add_argument("records", nargs="+", help="records.jsonl file(s) or store folder(s)")
    args = ap.parse_args(argv)
    for src in args.records:
        path = Path(src)
        try:
            if path.is_dir():
                from bench.store import Store
                with Store(path, create=False) as store:
                    recs = [json.loads(r.to_json()) for r in store.records()]
            else:
                recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
            rows = from_records(recs)
        except (OSError, ValueError, KeyError, TypeError, AttributeError, sqlite3.Error,
                StoreError) as e:
            print(f"error: cannot read records from {src}: {type(e).__name__}: {e}",
                  file=sys.stderr)
            return 2
        if not rows:
            print(f"{src}: no setup with a baseline and a variant on >= 2 matched seeds")
        for row in rows:
            print(f"{src}: {row['data']} {row['steps']} steps, lr G {row['lr_g']:g} / D "
                  f"{row['lr_d']:g}, batch {row['batch']}: {row['rows']} variants x {row['n']} "
                  f"seeds, sd of paired Δ modes {row['sd_diff']:.2f}; detectable at 80% power: "
                  f"{row['detectable_n']:.2f} at {row['n']} seeds, {row['detectable_5']:.2f} at "
                  f"5, {row['detectable_8']:.2f} at 8; seeds for 1 mode: {row['seeds_1_mode']}, "
                  f"for 2 modes: {row['seeds_2_modes']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
