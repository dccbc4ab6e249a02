"""Tables per design, built from the rows of `bench.store.results.load_records`:

- `delta_table`: add-one, baseline, cells and sweeps (rows: baseline, then variants; Δ vs the
  baseline at the same base settings), and leave-one-out (Δ = all − all-without-the-row's-trick);
- `pairs_table`: Δ(a+b) and the interaction Δ(a+b) − Δ(a) − Δ(b), paired over seeds;
- `factorial_table`: main effects and two-factor interactions by least squares on the ±1 design;
(the tuned view of an LR sweep is in `bench.report.tuned`; what a Δ is against, in
`bench.report.pairing`).
"""
from __future__ import annotations

import json
import math
from collections import Counter
from typing import Callable

import numpy as np
import pandas as pd

from bench.report import budget, compute, power, stats, validity
# all_of, baseline_of and tuned_table stay importable from here (build/design_tables uses them so)
from bench.report.pairing import all_of, baseline_of, single_of  # noqa: F401
from bench.report.rows import (by_seed, ci_note, delta_text, heads_and_claims, labels,  # noqa: F401
                               light, primary_of, test_line)
from bench.report.tables import ARROWS, Cell, Table, count, num
from bench.report.tuned import tuned_table  # noqa: F401
from bench.store.results import direction

HIDDEN = {"is_std", "kid_std"}  # uncertainties of a single score: in the CSV, not the tables


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
    c = Counter(f for flags in rows["run_flags"] for f in flags)
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
                bootstrap: bool = False, notes: list[str] | None = None,
                primary: str | None = None) -> Table:
    """Mean ± std (n) per metric, paired Δ with CI per headline metric, Holm across rows.
    `reference(variant_rows, pool)` gives the rows Δ is taken against (None: the row is itself
    a reference). `reverse`: Δ = reference − variant (leave-one-out). `primary`: the grid's
    pre-registered metric for this dataset (`primary` in a [[data]] table): only its Δs are
    claims (tested, Holm over the rows); the other headline Δs are secondary, printed with their
    intervals but no test. Without it every headline Δ is a claim."""
    part, pool = light(part), light(pool)  # fast selections (rows.light)
    shown = shown_metrics(part, metrics)
    # the Holm family's metrics: the primary alone where set (rows.heads_and_claims)
    heads, claims = heads_and_claims([m for m in headline if m in shown], primary,
                                     primary in shown)
    groups = variants(part)
    names = labels(groups, row_name)
    records, deltas = [], []
    for rows, row_label in zip(groups, names):
        rec = {"variant": row_label,
               "role": rows["role"].iloc[0], "status": status_text(rows),
               "n_seeds": len(rows), "n_done": int((rows["status"] == "done").sum()),
               "n_diverged": int((rows["status"] == "diverged").sum()),
               "n_failed": int((rows["status"] == "failed").sum()),
               "g_params": _first(rows, "g_params"), "d_params": _first(rows, "d_params"),
               "g_lr": _first(rows, "g_lr"), "d_lr": _first(rows, "d_lr"),
               "flags": flags_text(rows), "reason": "; ".join(sorted(set(rows["reason"]) - {""})),
               **compute.compute_record(rows)}
        for m in shown:
            rec[f"{m}_mean"], rec[f"{m}_std"], rec[f"{m}_n"] = stats.mean_std(by_seed(rows, m))
        ref = reference(rows, pool)
        rec["delta_withheld"] = validity.withheld(rows, ref)  # both degenerate: not an effect
        row_deltas = {}
        for m in heads:
            if ref is None or rec["n_done"] == 0 or rec["delta_withheld"]:
                d = stats.NO_DELTA
            else:
                a, b = by_seed(rows, m), by_seed(ref, m)
                d = stats.paired_delta(b, a, bootstrap=bootstrap) if reverse else \
                    stats.paired_delta(a, b, bootstrap=bootstrap)
            row_deltas[m] = d
            sens = budget.sensitivity(d, rows, ref, m, reverse=reverse)
            rec.update({f"d_{m}": d.delta, f"d_{m}_lo": d.lo, f"d_{m}_hi": d.hi,
                        f"d_{m}_n": d.n, f"d_{m}_p": d.p, f"d_{m}_ci": d.method,
                        f"d_{m}_p_perm": d.p_perm, f"d_{m}_p_floor": d.p_floor,
                        f"d_{m}_sd": d.sd, f"d_{m}_half": sens.half.delta,
                        f"d_{m}_half_p_perm": sens.half.p_perm,
                        f"d_{m}_fragile": sens.fragile})
        records.append(rec)
        deltas.append(row_deltas)
    numbers = pd.DataFrame(records)
    # Holm over every claim the table makes: all rows x all headline metrics (sign-flip p), or
    # all rows x the primary metric where the grid pre-registers one (the rest: secondary)
    family = stats.holm_columns(numbers, [f"d_{m}_p_perm" for m in claims])
    for m in heads:
        numbers[f"d_{m}_p_holm"] = (family[f"d_{m}_p_perm"] if m in claims else math.nan) \
            if len(numbers) else []
    best = {}
    for m in shown:
        col = numbers[f"{m}_mean"] if len(numbers) else pd.Series(dtype=float)
        if direction(m) and col.notna().any() and col.dropna().nunique() > 1:  # no bold for ties
            best[m] = col.max() if direction(m) == "up" else col.min()
    columns = (["variant", "status", "n", "G / D params", "lr G/D", compute.COLUMN]
               + [f"{m} {ARROWS.get(direction(m), '')}".rstrip() for m in shown]
               + [f"{delta_label} {m} [95% CI]" + ("" if m in claims else " (secondary)")
                  for m in heads] + ["flags"])
    rows_out = []
    for i, rec in numbers.iterrows():
        cells = [Cell(rec["variant"]), Cell(rec["status"]), Cell(f"{rec['n_done']}/{rec['n_seeds']}"),
                 Cell(f"{count(rec['g_params'])} / {count(rec['d_params'])}"),
                 Cell(_lr_text(groups[i])), Cell(compute.compute_text(rec))]
        for m in shown:
            mean, sd, n = rec[f"{m}_mean"], rec[f"{m}_std"], rec[f"{m}_n"]
            text = "–" if n == 0 else (f"{num(mean)} ± {num(sd)} ({n})" if n > 1 else f"{num(mean)} (1)")
            cells.append(Cell(text, bold=m in best and n > 0 and mean == best[m]))
        for m in heads:
            d, text = deltas[i][m], delta_text(deltas[i][m], tested=m in claims)
            text = validity.WITHHELD_TEXT if rec["delta_withheld"] else text
            ph = rec.get(f"d_{m}_p_holm", math.nan)
            if math.isfinite(ph) and not rec["delta_withheld"]:
                text += f" p_H={ph:.2g}"
            if rec.get(f"d_{m}_fragile"):
                text += budget.MARK
            cells.append(Cell(text))
        cells.append(Cell(rec["flags"]))
        rows_out.append(cells)
    secondary = [m for m in heads if m not in claims]
    base_notes = [
        test_line([row[m] for row in deltas for m in claims if m in row], len(claims),
                  family=f"the pre-registered primary metric {primary} × rows"
                  if secondary else None)
        + (f" Secondary (described with intervals, not tested or counted as claims): "
           f"{', '.join(secondary)}." if secondary else ""),
        f"Cells: mean ± std over seeds (n done). {delta_label}: paired over matched seeds, "
        f"against the reference of the same setup (config but tricks and seed); "
        f"{ci_note(bootstrap)} p_H = the sign-flip p Holm-adjusted over every claim of this "
        "table (all rows × all headline metrics). Bold: best "
        "mean per column (↑ higher is better, ↓ lower). A CI needs ≥ 2 seeds with some spread. "
        "[k=v] in a row label: a sweep point, or a setting that differs between the rows (named "
        "where it is not the harness default).",
    ]
    if len(numbers) and numbers["delta_withheld"].any():
        base_notes.append(validity.WITHHELD_NOTE)
    if len(numbers) and any(numbers[f"d_{m}_fragile"].any() for m in heads):
        base_notes.append(budget.NOTE)
    base_notes += power_notes(numbers, heads)
    return Table(name, title, columns, rows_out, numbers, base_notes + (notes or []))


def power_notes(numbers: pd.DataFrame, heads: list[str]) -> list[str]:
    """One line: the smallest Δ this table detects at 80% power per headline metric, from the
    pooled sd of its paired differences, and the seeds a 1-mode effect needs
    (`bench.report.power`)."""
    parts, seeds = [], ""
    for m in heads:
        pw = power.table_power(numbers, m) if len(numbers) else {}
        if not pw or not math.isfinite(pw["sd_diff"]):
            continue
        parts.append(f"{m} {num(pw['detectable'])} (sd of differences {num(pw['sd_diff'])})")
        if m == "modes" and math.isfinite(pw["seeds_1"]):
            seeds = f"; a 1-mode effect needs {pw['seeds_1']} paired seeds"
        elif m == "modes" and pw["seeds_1"] == math.inf:
            seeds = f"; a 1-mode effect needs more than {power.MAX_SEEDS} paired seeds"
    if not parts:
        return []
    n = power.table_power(numbers, heads[0]).get("n") if heads else None
    return [f"Power (paired t approximation, α = 0.05 two-sided, 80%): at {n} seeds the smallest "
            f"detectable |Δ| is " + ", ".join(parts) + seeds + f" (and ≥ {power.MIN_SEEDS} for "
            "the sign-flip test to reach p < 0.05 at all)."]


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
    """Per pair: Δ(a+b) vs baseline and the interaction (a+b) − a − b + baseline per seed, each
    against cells at the pair's own sweep point (data axes, tuned lr, the tricks' params)."""
    part, pool = light(part), light(pool)  # fast selections (rows.light)
    records, rows_out, claims = [], [], []
    groups = [g for g in variants(part) if len(g["tricks"].iloc[0]) == 2]
    for rows, label in zip(groups, labels(groups)):
        tricks = rows["tricks"].iloc[0]
        base = baseline_of(rows, pool)
        singles = [single_of(rows, t, pool) for t in tricks]
        point = label[len(rows["label"].iloc[0]):].strip()[1:-1]  # "lr=0.001" of "a+b [lr=0.001]"
        rec = {"pair": label, "a": tricks[0], "b": tricks[1], "point": point,
               "status": status_text(rows)}
        cells = [Cell(validity.mark(rec["pair"], rows)), Cell(rec["status"])]
        rec["delta_withheld"] = validity.withheld(rows, base)  # both degenerate: not an effect
        for m in headline:
            if base is None or not (rows["status"] == "done").any() or rec["delta_withheld"]:
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
                            f"{prefix}_{m}_p": d.p, f"{prefix}_{m}_ci": d.method,
                            f"{prefix}_{m}_p_perm": math.nan if rec["delta_withheld"]
                            else d.p_perm})
                claims.append(d)
            cells += [Cell(validity.WITHHELD_TEXT if rec["delta_withheld"] else delta_text(d))
                      for d in (d_ab, inter)]
        records.append(rec)
        rows_out.append(cells)
    numbers = pd.DataFrame(records)
    # Holm over every claim of the table: each pair's Δ(a+b) and interaction on every metric
    tested = [f"{prefix}_{m}_p_perm" for m in headline for prefix in ("d", "i")]
    family = stats.holm_columns(numbers, [c for c in tested if c in numbers])
    for col, adjusted in family.items():
        numbers[col.replace("_p_perm", "_p_holm")] = adjusted
        pos = 2 + tested.index(col)  # pair, status, then (Δ(a+b), interaction) per metric
        for i, ph in enumerate(adjusted):
            if math.isfinite(ph):
                rows_out[i][pos] = Cell(rows_out[i][pos].text + f" p_H={ph:.2g}")
    columns = ["pair", "status"]
    for m in headline:
        columns += [f"Δ(a+b) {m}", f"interaction {m}"]
    notes = [test_line(claims, family=f"Δ(a+b) and interaction × {len(headline)} metric(s) × "
                                      "pairs"),
             "interaction = Δ(a+b) − Δ(a) − Δ(b) per seed (= (a+b) − a − b + baseline), mean "
             "over the seeds all four cells share. " + ci_note(bootstrap) + " Single-trick "
             "cells come from any design of the grid at the pair's sweep point (same setup, the "
             "trick's params as in the pair); '–' where one is missing."]
    if any(validity.MARK in r[0].text for r in rows_out):
        notes.append(validity.MARK_NOTE)
    if records and any(r["delta_withheld"] for r in records):
        notes.append(validity.WITHHELD_NOTE)
    return Table(name, title, columns, rows_out, numbers, notes)


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
    numbers = pd.DataFrame(records)
    family = stats.holm_columns(numbers, [f"{m}_p" for m in results if f"{m}_p" in numbers])
    for col, adjusted in family.items():  # Holm over every effect of every metric together
        numbers[col + "_holm"] = adjusted
    claims = int(sum(np.isfinite(v).sum() for v in family.values()))
    notes = [f"**Test:** t-test of each least-squares effect ({first.dof} residual degrees of "
             f"freedom; effects of single runs, not paired seeds); **correction:** Holm over the "
             f"table's {claims} claims (effects × metrics; `<metric>_p_holm` in the CSV; * is "
             f"unadjusted); **runs:** {int(done.sum())} scored.",
             f"Least squares on the ±1 design over {int(done.sum())} scored runs (seeds are "
             f"replicates), {first.dof} residual degrees of freedom; effect = mean(high) − "
             "mean(low) = 2 × coefficient, ± its standard error; * = 95% CI excludes 0."]
    if lost:
        notes.append(f"{lost} run(s) not scored (conflict, not-applicable, diverged or failed) "
                     "are missing from the fit.")
    notes += validity.runs_note(runs[done])
    if first.unestimable:
        notes.append("Not estimable from the runs that remain: " + ", ".join(first.unestimable) + ".")
    dataset = part["dataset"].iloc[0]
    for key in ("letters", "generators", "aliases"):
        value = for_dataset(spec.get(key), dataset)
        if value:
            text = value if isinstance(value, str) else json.dumps(value)
            notes.append(f"Design {key}: {text}")
    return Table(name, title, columns, rows_out, numbers, notes)


def for_dataset(value, dataset: str):
    """Grid spec entries are stored per dataset ({dataset: value}); older specs hold the value."""
    if isinstance(value, dict) and dataset in value:
        return value[dataset]
    return value
