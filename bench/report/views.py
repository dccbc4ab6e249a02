"""Tables per design, built from the rows of `bench.results.load_records`:

- `delta_table`: add-one, baseline, cells and sweeps (rows: baseline, then variants; Δ vs the
  baseline at the same base settings), and leave-one-out (Δ = all − all-without-the-row's-trick);
- `pairs_table`: Δ(a+b) and the interaction Δ(a+b) − Δ(a) − Δ(b), paired over seeds;
- `factorial_table`: main effects and two-factor interactions by least squares on the ±1 design;
- `tuned_table`: each variant at its own best LR beside the common-LR rows.
"""
from __future__ import annotations

import json
import math
from collections import Counter
from typing import Callable

import numpy as np
import pandas as pd

from bench.report import stats
from bench.report.tables import ARROWS, Cell, Table, count, num
from bench.results import TUNE_METRIC, direction, kind_of

# a variant's baseline shares these (both nets' lrs and G's baseline loss included: two grids in
# one store may train the same data under different ones)
BASE_KEY = ["steps", "batch_size", "lr", "lr_d", "g_loss", "resolution"]
HIDDEN = {"is_std", "kid_std"}  # uncertainties of a single score: in the CSV, not the tables


def _key(row) -> tuple:
    values = (row.get(k) for k in BASE_KEY)
    return tuple(None if (isinstance(v, float) and math.isnan(v)) else v for v in values)


def variants(part: pd.DataFrame) -> list[pd.DataFrame]:
    """Rows grouped by variant id: baseline first, then in grid order."""
    groups = []
    for _, rows in part.groupby("variant_id", sort=False):
        rows = rows.drop_duplicates("cell_id")
        first = rows["member_order"].where(rows["member_order"] >= 0).min()
        order = (0 if (rows["role"] == "baseline").all() else 1,
                 first if pd.notna(first) else math.inf, rows["created_at"].min())
        groups.append((order, rows))
    return [rows for _, rows in sorted(groups, key=lambda g: g[0])]


def by_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    done = rows[(rows["status"] == "done")].drop_duplicates("seed")
    if metric not in done:
        return pd.Series(dtype=float)
    return pd.Series(done[metric].to_numpy(dtype=float), index=done["seed"].to_numpy())


def status_text(rows: pd.DataFrame) -> str:
    """'done', or what happened to the seeds: conflict / not-applicable with the reason,
    'diverged 1/3 (step 812)', 'failed 1/3'."""
    c = Counter(rows["status"])
    n = len(rows)
    for blocked in ("conflict", "not-applicable"):
        if c.get(blocked) == n:
            return f"{blocked}: {rows['reason'].iloc[0]}"
    if c.get("done") == n:
        return "done"
    parts = []
    for s in ("diverged", "failed", "conflict", "not-applicable"):
        if c.get(s):
            steps = sorted(int(x) for x in rows.loc[rows["status"] == s, "step"])
            where = f" (step {', '.join(map(str, steps))})" if s == "diverged" else ""
            parts.append(f"{s} {c[s]}/{n}{where}")
    return ", ".join(parts)


def flags_text(rows: pd.DataFrame) -> str:
    c = Counter(f for flags in rows["flags"] for f in flags)
    return ", ".join(f"{f}×{k}" if k > 1 else f for f, k in sorted(c.items()))


def _first(rows: pd.DataFrame, col: str):
    vals = rows[col].dropna() if col in rows else []
    return vals.iloc[0] if len(vals) else None


def _lr_text(rows: pd.DataFrame) -> str:
    g, d = _first(rows, "g_lr"), _first(rows, "d_lr")
    if g is None:
        return "–"
    return num(g) if d is None or d == g else f"{num(g)}/{num(d)}"


def shown_metrics(part: pd.DataFrame, metrics: list[str]) -> list[str]:
    return [m for m in metrics if m in part and m not in HIDDEN and part[m].notna().any()]


def delta_table(name: str, title: str, part: pd.DataFrame, pool: pd.DataFrame,
                metrics: list[str], headline: list[str], *,
                reference: Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame | None],
                reverse: bool = False, delta_label: str = "Δ", row_name=None,
                bootstrap: bool = False, notes: list[str] | None = None) -> Table:
    """Mean ± std (n) per metric, paired Δ with CI per headline metric, Holm across rows.
    `reference(variant_rows, pool)` gives the rows Δ is taken against (None: the row is itself
    a reference). `reverse`: Δ = reference − variant (leave-one-out)."""
    shown = shown_metrics(part, metrics)
    heads = [m for m in headline if m in shown]
    groups = variants(part)
    records, deltas = [], []
    for rows in groups:
        rec = {"variant": row_name(rows) if row_name else rows["row_label"].iloc[0],
               "role": rows["role"].iloc[0], "status": status_text(rows),
               "n_seeds": len(rows), "n_done": int((rows["status"] == "done").sum()),
               "n_diverged": int((rows["status"] == "diverged").sum()),
               "n_failed": int((rows["status"] == "failed").sum()),
               "g_params": _first(rows, "g_params"), "d_params": _first(rows, "d_params"),
               "g_lr": _first(rows, "g_lr"), "d_lr": _first(rows, "d_lr"),
               "flags": flags_text(rows), "reason": "; ".join(sorted(set(rows["reason"]) - {""}))}
        for m in shown:
            rec[f"{m}_mean"], rec[f"{m}_std"], rec[f"{m}_n"] = stats.mean_std(by_seed(rows, m))
        ref = reference(rows, pool)
        row_deltas = {}
        for m in heads:
            if ref is None or rec["n_done"] == 0:
                d = stats.NO_DELTA
            else:
                a, b = by_seed(rows, m), by_seed(ref, m)
                d = stats.paired_delta(b, a, bootstrap=bootstrap) if reverse else \
                    stats.paired_delta(a, b, bootstrap=bootstrap)
            row_deltas[m] = d
            rec.update({f"d_{m}": d.delta, f"d_{m}_lo": d.lo, f"d_{m}_hi": d.hi,
                        f"d_{m}_n": d.n, f"d_{m}_p": d.p})
        records.append(rec)
        deltas.append(row_deltas)
    numbers = pd.DataFrame(records)
    for m in heads:
        numbers[f"d_{m}_p_holm"] = stats.holm(numbers[f"d_{m}_p"]) if len(numbers) else []
    best = {}
    for m in shown:
        col = numbers[f"{m}_mean"] if len(numbers) else pd.Series(dtype=float)
        if direction(m) and col.notna().any() and col.dropna().nunique() > 1:  # no bold for ties
            best[m] = col.max() if direction(m) == "up" else col.min()
    columns = (["variant", "status", "n", "G / D params", "lr G/D"]
               + [f"{m} {ARROWS.get(direction(m), '')}".rstrip() for m in shown]
               + [f"{delta_label} {m} [95% CI]" for m in heads] + ["flags"])
    rows_out = []
    for i, rec in numbers.iterrows():
        cells = [Cell(rec["variant"]), Cell(rec["status"]), Cell(f"{rec['n_done']}/{rec['n_seeds']}"),
                 Cell(f"{count(rec['g_params'])} / {count(rec['d_params'])}"),
                 Cell(_lr_text(groups[i]))]
        for m in shown:
            mean, sd, n = rec[f"{m}_mean"], rec[f"{m}_std"], rec[f"{m}_n"]
            text = "–" if n == 0 else (f"{num(mean)} ± {num(sd)} ({n})" if n > 1 else f"{num(mean)} (1)")
            cells.append(Cell(text, bold=m in best and n > 0 and mean == best[m]))
        for m in heads:
            d = deltas[i][m]
            if d.n == 0:
                cells.append(Cell("–"))
                continue
            text = num(d.delta, signed=True)
            if math.isfinite(d.lo):
                text += f" [{num(d.lo, signed=True)}, {num(d.hi, signed=True)}]"
                text += " *" if d.excludes_zero else ""
                ph = rec[f"d_{m}_p_holm"]
                text += f" p_H={ph:.2g}" if math.isfinite(ph) else ""
            else:
                text += f" (n={d.n})"
            cells.append(Cell(text))
        cells.append(Cell(rec["flags"]))
        rows_out.append(cells)
    base_notes = [
        f"Cells: mean ± std over seeds (n done). {delta_label}: paired over matched seeds, "
        f"{'percentile bootstrap' if bootstrap else 'paired t'} 95% CI; * = the CI excludes 0; "
        "p_H = Holm-adjusted p-value across this table's rows. Bold: best mean per column "
        "(↑ higher is better, ↓ lower). A CI needs ≥ 2 seeds with some spread.",
    ]
    return Table(name, title, columns, rows_out, numbers, base_notes + (notes or []))


def baseline_of(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame | None:
    """The baseline with the variant's base settings (None for a baseline row itself)."""
    if (rows["role"] == "baseline").all() or rows["tricks"].iloc[0] == ():
        return None
    key = _key(rows.iloc[0])
    cand = pool[(pool["tricks"].map(len) == 0)]
    cand = cand[[_key(r) == key for _, r in cand.iterrows()]]
    return cand.drop_duplicates("cell_id") if len(cand) else None


def all_of(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame | None:
    """Leave-one-out: the 'all' row the others are compared with."""
    if (rows["role"] == "all").all() or (rows["role"] == "baseline").all():
        return None
    cand = pool[pool["role"] == "all"]
    key = _key(rows.iloc[0])
    cand = cand[[_key(r) == key for _, r in cand.iterrows()]]
    return cand.drop_duplicates("cell_id") if len(cand) else None


def leave_one_out_name(part: pd.DataFrame) -> Callable[[pd.DataFrame], str]:
    full = part.loc[part["role"] == "all", "tricks"]
    everything = set(full.iloc[0]) if len(full) else set()

    def name(rows: pd.DataFrame) -> str:
        role = rows["role"].iloc[0]
        if role in ("all", "baseline"):
            return f"{role}: {rows['row_label'].iloc[0]}" if role == "all" else "baseline"
        missing = sorted(everything - set(rows["tricks"].iloc[0]))
        return f"without {', '.join(missing)}" if missing else rows["row_label"].iloc[0]
    return name


def pairs_table(name: str, title: str, part: pd.DataFrame, pool: pd.DataFrame,
                headline: list[str], bootstrap: bool = False) -> Table:
    """Per pair: Δ(a+b) vs baseline and the interaction (a+b) − a − b + baseline per seed."""
    records, rows_out = [], []
    for rows in variants(part):
        tricks = rows["tricks"].iloc[0]
        if len(tricks) != 2:
            continue
        base = baseline_of(rows, pool)
        singles = []
        for t in tricks:
            cand = pool[pool["tricks"].map(lambda x, t=t: x == (t,)) & (pool["sweep"].map(len) == 0)]
            cand = cand[[_key(r) == _key(rows.iloc[0]) for _, r in cand.iterrows()]]
            singles.append(cand.drop_duplicates("cell_id") if len(cand) else None)
        rec = {"pair": "+".join(tricks), "a": tricks[0], "b": tricks[1], "status": status_text(rows)}
        cells = [Cell(rec["pair"]), Cell(rec["status"])]
        for m in headline:
            if base is None or not (rows["status"] == "done").any():
                d_ab = inter = stats.NO_DELTA
            else:
                ab, b0 = by_seed(rows, m), by_seed(base, m)
                d_ab = stats.paired_delta(ab, b0, bootstrap=bootstrap)
                if any(s is None for s in singles):
                    inter = stats.NO_DELTA
                else:
                    sa, sb = by_seed(singles[0], m), by_seed(singles[1], m)
                    joined = pd.concat([ab, sa, sb, b0], axis=1, join="inner").to_numpy(float)
                    inter = stats.differences_ci(joined[:, 0] - joined[:, 1] - joined[:, 2]
                                                 + joined[:, 3], bootstrap=bootstrap)
            for prefix, d in (("d", d_ab), ("i", inter)):
                rec.update({f"{prefix}_{m}": d.delta, f"{prefix}_{m}_lo": d.lo,
                            f"{prefix}_{m}_hi": d.hi, f"{prefix}_{m}_n": d.n,
                            f"{prefix}_{m}_p": d.p})
            cells += [Cell(_delta_text(d_ab)), Cell(_delta_text(inter))]
        records.append(rec)
        rows_out.append(cells)
    numbers = pd.DataFrame(records)
    columns = ["pair", "status"]
    for m in headline:
        columns += [f"Δ(a+b) {m}", f"interaction {m}"]
    notes = ["interaction = Δ(a+b) − Δ(a) − Δ(b) per seed (= (a+b) − a − b + baseline), mean "
             "with a paired t 95% CI over the seeds all four cells share; * = CI excludes 0. "
             "Single-trick cells come from any design of the grid with the same base settings; "
             "'–' where one is missing."]
    return Table(name, title, columns, rows_out, numbers, notes)


def _delta_text(d: stats.Delta) -> str:
    if d.n == 0:
        return "–"
    text = num(d.delta, signed=True)
    if math.isfinite(d.lo):
        return text + f" [{num(d.lo, signed=True)}, {num(d.hi, signed=True)}]" + (
            " *" if d.excludes_zero else "")
    return text + f" (n={d.n})"


def factorial_table(name: str, title: str, part: pd.DataFrame, headline: list[str],
                    spec: dict) -> Table | None:
    """Effects (high − low level) with standard errors; aliased effects named."""
    runs = part.drop_duplicates("cell_id")
    runs = runs[runs["factors"].map(len) > 0]
    if runs.empty:
        return None
    factors = pd.DataFrame(list(runs["factors"]), index=runs.index).fillna(0).astype(float)
    done = runs["status"] == "done"
    results = {m: stats.factorial_effects(factors[done], runs.loc[done, m]) for m in headline
               if m in runs and runs.loc[done, m].notna().any()}
    if not results:
        return None
    names = list(next(iter(results.values())).table.index)
    columns = ["effect"] + [f"{m} {ARROWS.get(direction(m), '')}".rstrip() for m in results] + ["aliased with"]
    records, rows_out = [], []
    for eff in names:
        rec, cells = {"effect": eff}, [Cell(eff)]
        aliases = ""
        for m, res in results.items():
            row = res.table.loc[eff] if eff in res.table.index else None
            if row is None:
                cells.append(Cell("–"))
                continue
            rec.update({f"{m}_effect": row["effect"], f"{m}_se": row["se"], f"{m}_lo": row["lo"],
                        f"{m}_hi": row["hi"], f"{m}_p": row["p"]})
            text = f"{num(row['effect'], signed=True)} ± {num(row['se'])}"
            excl = math.isfinite(row["lo"]) and (row["lo"] > 0 or row["hi"] < 0)
            cells.append(Cell(text + (" *" if excl else "")))
            aliases = row["aliases"] or aliases
        rec["aliases"] = aliases
        cells.append(Cell(aliases))
        records.append(rec)
        rows_out.append(cells)
    first = next(iter(results.values()))
    lost = int((~done).sum())
    notes = [f"Least squares on the ±1 design over {int(done.sum())} scored runs (seeds are "
             f"replicates), {first.dof} residual degrees of freedom; effect = mean(high) − "
             "mean(low) = 2 × coefficient, ± its standard error; * = 95% CI excludes 0."]
    if lost:
        notes.append(f"{lost} run(s) not scored (conflict, not-applicable, diverged or failed) "
                     "are missing from the fit.")
    if first.unestimable:
        notes.append("Not estimable from the runs that remain: " + ", ".join(first.unestimable) + ".")
    dataset = part["dataset"].iloc[0]
    for key in ("letters", "generators", "aliases"):
        value = for_dataset(spec.get(key), dataset)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            notes.append(f"Design {key}: {text}")
    return Table(name, title, columns, rows_out, pd.DataFrame(records), notes)


def for_dataset(value, dataset: str):
    """Grid spec entries are stored per dataset ({dataset: value}); older specs hold the value."""
    if isinstance(value, dict) and dataset in value:
        return value[dataset]
    return value


def tuned_table(name: str, title: str, part: pd.DataFrame, headline: list[str],
                bootstrap: bool = False, metric: str | None = None,
                base_lr: float | None = None) -> Table | None:
    """Each variant at the LR with the best mean (over seeds) of `metric`, beside the common-LR
    view: every variant at one LR (`base_lr` when it was tried, else the baseline's best)."""
    tuned = part[part["tune_lr"].notna()].drop_duplicates("cell_id")
    if tuned.empty:
        return None
    metric = metric or TUNE_METRIC[kind_of(part)]
    if metric not in tuned:
        return None
    sign = 1 if direction(metric) == "up" else -1
    key = tuned["label"] + tuned["sweep"].map(
        lambda s: json.dumps({k: v for k, v in s.items() if k != "lr"}, sort_keys=True))
    chosen = {}
    for k, rows in tuned.groupby(key, sort=False):
        means = {lr: stats.mean_std(by_seed(r, metric))[0] for lr, r in rows.groupby("tune_lr")}
        finite = {lr: v for lr, v in means.items() if math.isfinite(v)}
        if finite:
            lr = max(finite, key=lambda x: sign * finite[x])
            chosen[k] = (lr, rows[rows["tune_lr"] == lr], means, rows)
    base_key = next((k for k, c in chosen.items() if c[1]["tricks"].iloc[0] == ()), None)
    tried = set(tuned["tune_lr"])
    common = base_lr if base_lr in tried else (chosen[base_key][0] if base_key else None)
    base_at_common = (chosen[base_key][3][chosen[base_key][3]["tune_lr"] == common]
                      if base_key is not None else None)
    records, rows_out = [], []
    heads = [m for m in headline if m in tuned]
    for k, (lr, rows, means, every_lr) in chosen.items():
        rec = {"variant": rows["label"].iloc[0], "best_lr": lr, "common_lr": common,
               "lrs_tried": ", ".join(num(x) for x in sorted(means))}
        cells = [Cell(rec["variant"]), Cell(num(lr)), Cell(rec["lrs_tried"])]
        at_common = every_lr[every_lr["tune_lr"] == common]
        for m in heads:
            mean, sd, n = stats.mean_std(by_seed(rows, m))
            rec.update({f"{m}_mean": mean, f"{m}_std": sd, f"{m}_n": n})
            d = c = stats.NO_DELTA
            if base_key is not None and k != base_key:
                d = stats.paired_delta(by_seed(rows, m), by_seed(chosen[base_key][1], m),
                                       bootstrap=bootstrap)
                c = stats.paired_delta(by_seed(at_common, m), by_seed(base_at_common, m),
                                       bootstrap=bootstrap)
            rec.update({f"d_{m}": d.delta, f"d_{m}_lo": d.lo, f"d_{m}_hi": d.hi,
                        f"common_d_{m}": c.delta, f"common_d_{m}_lo": c.lo,
                        f"common_d_{m}_hi": c.hi})
            cells.append(Cell(f"{num(mean)} ± {num(sd)} ({n})" if n > 1 else num(mean)))
            cells.append(Cell(_delta_text(d)))
            cells.append(Cell(_delta_text(c)))
        records.append(rec)
        rows_out.append(cells)
    columns = ["variant", "best lr", "lrs tried"]
    for m in heads:
        columns += [f"{m} {ARROWS.get(direction(m), '')}".rstrip(), f"Δ {m} (both tuned)",
                    f"Δ {m} at lr {num(common)}"]
    notes = [f"Each variant at its own best LR, chosen on the mean over seeds of `{metric}`, and "
             "its paired Δ against the baseline at the baseline's own best LR; the choice and the "
             "score use the same seeds, so these numbers are optimistic (most for noisy "
             f"variants). Beside it the common-LR view: every variant and the baseline at lr "
             f"{num(common)} ({'the grid base LR' if common == base_lr else 'the baseline best LR'}"
             "). The design table holds every LR as its own row."]
    return Table(name, title, columns, rows_out, pd.DataFrame(records), notes)
