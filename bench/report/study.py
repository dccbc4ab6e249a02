"""The study-level outputs of a report (issue 19, Musts 2, 5, 6; issue 21, item 8): what a reader
wants first, built from the same rows and tests as the design tables.

- `verdict_table`: every trick × dataset, *helps / hurts / no detectable effect / fragile / not
  applicable*, with Δ on the dataset's tuning metric, its 95% interval, the exact sign-flip p,
  that p Holm-adjusted over every claim of the verdict table, the probability of improvement over
  the baseline and the half-budget Δ; at the held-out setting where the grid tunes on held-out
  seeds (each trick and the baseline at the setting chosen on tuning seeds, scored on evaluation
  seeds), else at the grid's common setting.
- `aggregate_table`: per trick across seeds and datasets, on scores comparable across datasets
  (modes / K, the 2-D high-quality share): IQM with a stratified-bootstrap 95% interval and the
  probability of improvement over the baseline with its interval (`bench.report.aggregate`).
- `power_table`: per delta table, the smallest Δ detectable at 80% power and the seeds a 1-mode
  effect needs (`bench.report.power`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import aggregate, budget, power, stats, tuned, validity
from bench.report.pairing import baseline_of
from bench.report.rows import by_seed, claim_metric, labels, light, primary_of
from bench.report.tables import Cell, Table, num
from bench.store.results import direction

SINGLE = ("add-one", "baseline", "cells")
PROFILE_PANELS = 25  # panels per performance-profile figure (5 x 5 stays readable)


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


def verdict_of(d: stats.Delta, p_holm: float, metric: str, fragile: bool) -> str:
    """helps / hurts when the Holm-adjusted sign-flip p < 0.05 (by the metric's direction);
    fragile when the conclusion changes at half budget; else no detectable effect."""
    if d.n == 0:
        return "no scores"
    if fragile:
        return "fragile"
    if math.isfinite(p_holm) and p_holm < 1 - stats.LEVEL:
        return "helps" if (d.delta > 0) == (direction(metric) == "up") else "hurts"
    return "no detectable effect"


def verdict_records(df: pd.DataFrame, bootstrap: bool = False,
                    specs: dict | None = None) -> list[dict]:
    """One record per trick × (grid, dataset). Holm over every tested claim together; where a
    grid pre-registers a primary metric per dataset (`primary` in its [[data]] tables), each of
    its datasets is its own family: the primary claims of that dataset's tricks (`family`)."""
    recs = []
    for u in units(df, specs):
        sign = 1 if direction(u.metric) == "up" else -1
        family = f"{u.grid}/{u.data}" if u.pre_registered else ""
        for rows in u.groups:
            rec = {"grid": u.grid, "data": u.data, "trick": _label(rows), "metric": u.metric,
                   "setting": "held out" if u.held_out else "common", "verdict": "",
                   "reason": "", "family": family}
            blocked = _blocked(rows)
            if blocked is not None:
                rec.update(verdict="not applicable", reason=blocked, n=0)
                recs.append(rec)
                continue
            ref = u.reference(rows, u.pool)
            withheld = validity.withheld(rows, ref)
            d = stats.NO_DELTA
            if ref is not None and not withheld:
                d = stats.paired_delta(by_seed(rows, u.metric), by_seed(ref, u.metric),
                                       bootstrap=bootstrap)
            sens = budget.sensitivity(d, rows, ref, u.metric)
            poi = aggregate.NO_ESTIMATE
            if ref is not None and not withheld:
                poi = aggregate.poi_interval([sign * by_seed(rows, u.metric).to_numpy(float)],
                                             [sign * by_seed(ref, u.metric).to_numpy(float)])
            rec.update({"delta": d.delta, "lo": d.lo, "hi": d.hi, "n": d.n, "p_perm": d.p_perm,
                        "p_floor": d.p_floor, "half_delta": sens.half.delta,
                        "fragile": sens.fragile, "poi": poi.value, "poi_lo": poi.lo,
                        "poi_hi": poi.hi, "withheld": withheld,
                        "seeds": sorted({int(s) for s in rows["seed"]}),
                        "tune": rows["tune"].iloc[0] if "tune" in rows else {}})
            if withheld:  # the seeds it has, not the 0 pairs of a withheld Δ
                rec["verdict"] = "degenerate: no effect reported"
                rec["n"] = _paired_seeds(rows, ref, u.metric)
            recs.append(rec)
    adjusted = np.full(len(recs), math.nan)
    for fam in dict.fromkeys(r["family"] for r in recs):
        idx = [i for i, r in enumerate(recs) if r["family"] == fam]
        adjusted[idx] = stats.holm([recs[i].get("p_perm", math.nan)
                                    if not recs[i].get("withheld") else math.nan for i in idx])
    size = {f: int(sum(np.isfinite(adjusted[i]) for i, r in enumerate(recs) if r["family"] == f))
            for f in dict.fromkeys(r["family"] for r in recs)}
    for r, ph in zip(recs, adjusted):
        r["p_holm"] = float(ph)
        if not r["verdict"]:
            d = stats.Delta(r["delta"], r["lo"], r["hi"], r["n"], math.nan,
                            p_perm=r["p_perm"], p_floor=r["p_floor"])
            r["verdict"] = verdict_of(d, ph, r["metric"], r["fragile"])
            if r["verdict"] == "no detectable effect" and r["p_floor"] >= 1 - stats.LEVEL:
                r["reason"] = f"{r['n']} seeds cannot reach p < 0.05"
            elif r["verdict"] == "no detectable effect" and \
                    r["p_floor"] * size[r["family"]] >= 1 - stats.LEVEL:  # Holm's first step
                r["reason"] = (f"{r['n']} seeds cannot reach p_H < 0.05 over "
                               f"{size[r['family']]} claims")
    return recs


def _paired_seeds(rows: pd.DataFrame, ref: pd.DataFrame | None, metric: str) -> int:
    """Seeds scored on `metric` in both `rows` and `ref`."""
    if ref is None:
        return 0
    both = pd.concat([by_seed(rows, metric), by_seed(ref, metric)], axis=1, join="inner")
    return int(both.notna().all(axis=1).sum())


def _interval(v, lo, hi, signed=True) -> str:
    if v is None or not (v == v):
        return "–"
    text = num(v, signed=signed)
    if lo == lo and hi == hi and lo is not None:
        text += f" [{num(lo, signed=signed)}, {num(hi, signed=signed)}]"
    return text


def verdict_table(df: pd.DataFrame, bootstrap: bool = False,
                  specs: dict | None = None) -> Table | None:
    recs = verdict_records(df, bootstrap, specs)
    if not recs:
        return None
    several = len({r["grid"] for r in recs}) > 1
    columns = ["data", "trick", "verdict", "metric", "Δ [95% CI]", "p (p_H)",
               "P(better than baseline) [95% CI]", "Δ at half budget", "seeds"]
    rows = []
    for r in recs:
        data = r["data"] + (f" ({r['grid']})" if several and r["grid"] else "")
        verdict = r["verdict"] + (f" ({r['reason']})" if r["reason"] else "")
        if r["verdict"] == "not applicable":
            rows.append([Cell(data), Cell(r["trick"]), Cell(verdict)] + [Cell("–")] * 6)
            continue
        p = "–" if not (r["p_perm"] == r["p_perm"]) else (
            f"{r['p_perm']:.2g} ({r['p_holm']:.2g})")
        arrow = "↑" if direction(r["metric"]) == "up" else "↓"
        rows.append([Cell(data), Cell(r["trick"]),
                     Cell(verdict, bold=r["verdict"] in ("helps", "hurts")),
                     Cell(f"{r['metric']} {arrow}"),
                     Cell(_interval(r["delta"], r["lo"], r["hi"])), Cell(p),
                     Cell(_interval(r["poi"], r["poi_lo"], r["poi_hi"], signed=False)),
                     Cell(num(r["half_delta"], signed=True) + (budget.MARK if r["fragile"]
                                                               else "")),
                     Cell(str(r["n"]))])
    held = any(r["setting"] == "held out" for r in recs)
    tested = sum(1 for r in recs if r.get("p_perm") == r.get("p_perm")
                 and not r.get("withheld") and r["verdict"] != "not applicable")
    ns = sorted({r["n"] for r in recs if r.get("n") and not r.get("withheld")})
    families = [f for f in dict.fromkeys(r["family"] for r in recs) if f]
    if families:  # pre-registered primary metrics: one family per dataset
        fam_n = {f: sum(1 for r in recs if r["family"] == f and r.get("p_perm") == r.get("p_perm")
                        and not r.get("withheld") and r["verdict"] != "not applicable")
                 for f in dict.fromkeys(r["family"] for r in recs)}
        correction = ("Holm within each dataset over its tricks' claims on the grid's "
                      "pre-registered primary metric (" + "; ".join(
                          f"{f.split('/', 1)[-1] or 'the rest'}: "
                          f"{next(r['metric'] for r in recs if r['family'] == f)}, {k} claims"
                          for f, k in fam_n.items()) + "); the design tables' other metrics "
                      "are secondary: described with intervals, not tested")
    else:
        correction = f"Holm over the {tested} claims of this table"
    notes = [
        f"**Test:** exact paired sign-flip test of Δ = 0, two-sided; **correction:** "
        f"{correction}; **seeds:** "
        f"{'–'.join(str(x) for x in (ns[0], ns[-1])) if len(ns) > 1 else (ns or ['–'])[0]} "
        "paired evaluation seeds per claim.",
        "helps / hurts: the Holm-adjusted sign-flip p (p_H) < 0.05, in the metric's better / "
        "worse direction; fragile: the sign, or the unadjusted decision at 0.05, differs at half "
        "the budget (from the stored eval curves); no detectable effect otherwise (with the "
        "reason where the seeds cannot reach p < 0.05 at all, or p_H < 0.05 over the family's m "
        "claims: the smallest p of an exact sign-flip test is 2 / 2^n, and Holm's first step "
        "multiplies it by m). Δ = trick − baseline on the dataset's primary metric (the grid's "
        "pre-registered one, else its tuning metric) with "
        "the paired 95% interval (t); P(better than baseline): the probability that a run of the "
        "trick beats a run of the baseline (Mann-Whitney, ties ½) with a stratified-bootstrap "
        "95% interval (2,000 resamples).",
        ("Setting: each trick and the baseline at the setting chosen on the tuning seeds and "
         "scored on evaluation seeds that took no part in the choice."
         if held else "Setting: the grid's common setting (this grid does not tune on "
                      "held-out seeds)."),
    ]
    numbers = pd.DataFrame([{k: v for k, v in r.items() if k != "tune"} for r in recs])
    return Table("verdict", "Verdict: which tricks help, on which data, by how much, how sure",
                 columns, rows, numbers, notes)


# -- aggregate statistics ---------------------------------------------------------------------
def aggregate_scores(df: pd.DataFrame, specs: dict | None = None) -> dict[str, dict]:
    """{grid: {"tasks": [data...], "scores": {metric: {label: {data: runs}}},
    "baseline": {metric: {label: {data: baseline runs it is compared with}}}}}."""
    out: dict[str, dict] = {}
    for u in units(df, specs):
        g = out.setdefault(u.grid, {"tasks": [], "scores": {}, "baseline": {},
                                    "degenerate": {}})
        g["tasks"].append(u.data)
        for rows in [*u.baselines, *u.groups]:  # rows most of whose seeds are at chance
            if _blocked(rows) is None and validity.degenerate(rows):
                g["degenerate"].setdefault(_label(rows), []).append(u.data)
        for name in aggregate.NORMALISED:
            bases = {_label(b): aggregate.normalised_scores(b, name) for b in u.baselines}
            if not any(r.size for r in bases.values()):
                continue
            sc = g["scores"].setdefault(name, {})
            bl = g["baseline"].setdefault(name, {})
            for label, runs in bases.items():  # one row per baseline setup
                if runs.size:
                    sc.setdefault(label, {})[u.data] = runs
                    g.setdefault("baseline_labels", set()).add(label)
            for rows in u.groups:
                if _blocked(rows) is not None:
                    continue
                ref = u.reference(rows, u.pool)
                mine = aggregate.normalised_scores(rows, name)
                if ref is None or not mine.size:
                    continue
                sc.setdefault(_label(rows), {})[u.data] = mine
                bl.setdefault(_label(rows), {})[u.data] = aggregate.normalised_scores(ref, name)
    return out


def aggregate_table(df: pd.DataFrame, grid: str, scores: dict) -> Table | None:
    names = [n for n in aggregate.NORMALISED if n in scores["scores"]]
    if not names:
        return None
    base_labels = scores.get("baseline_labels", set())
    labels = list(dict.fromkeys(lbl for n in names for lbl in scores["scores"][n]))
    labels = [lbl for lbl in labels if lbl in base_labels] + [
        lbl for lbl in labels if lbl not in base_labels]
    columns = ["trick", "datasets"]
    for n in names:
        columns += [f"IQM {n} [95% CI]", f"P(> baseline) {n} [95% CI]"]
    rows, recs = [], []
    degenerate = scores.get("degenerate", {})
    for lbl in labels:
        rec = {"trick": lbl, "degenerate_on": ", ".join(degenerate.get(lbl, []))}
        cells = [Cell(lbl + (f"{validity.MARK} ({rec['degenerate_on']})"
                             if rec["degenerate_on"] else ""))]
        data_seen = []
        for n in names:
            mine = scores["scores"][n].get(lbl, {})
            data = list(mine)
            data_seen += [d for d in data if d not in data_seen]
            est = aggregate.iqm_interval([mine[d] for d in data])
            base = scores["baseline"][n].get(lbl, {})
            poi = aggregate.NO_ESTIMATE if lbl in base_labels else aggregate.poi_interval(
                [mine[d] for d in data], [base.get(d, []) for d in data])
            rec.update({f"iqm_{n}": est.value, f"iqm_{n}_lo": est.lo, f"iqm_{n}_hi": est.hi,
                        f"runs_{n}": est.runs, f"poi_{n}": poi.value, f"poi_{n}_lo": poi.lo,
                        f"poi_{n}_hi": poi.hi, f"tasks_{n}": est.tasks})
            cells += [Cell(_interval(est.value, est.lo, est.hi, signed=False)),
                      Cell("–" if lbl in base_labels else
                           _interval(poi.value, poi.lo, poi.hi, signed=False),
                           bold=poi.lo == poi.lo and (poi.lo > 0.5 or poi.hi < 0.5))]
        rec["datasets"] = ", ".join(data_seen)
        cells.insert(1, Cell(rec["datasets"]))
        rows.append(cells)
        recs.append(rec)
    notes = [
        "Aggregates over every evaluation seed of every dataset where the score is comparable "
        "(Agarwal et al. 2021; rliable's definitions, re-implemented in "
        "`bench.report.aggregate`): modes/K = modes covered over the dataset's number of modes; "
        "high_quality = the 2-D high-quality share. IQM = mean of the middle 50% of all runs "
        "pooled (scipy trim_mean 0.25); P(> baseline) = probability that a run of the trick "
        "beats a run of the baseline on the same dataset (Mann-Whitney, ties ½), averaged over "
        "datasets. 95% intervals: percentile stratified bootstrap, 2,000 resamples, runs "
        "resampled within each dataset (independently for trick and baseline). Bold: the "
        "P(> baseline) interval excludes ½. No multiplicity correction: these are estimates "
        "with intervals, not tests; the verdict table holds the tests.",
        f"Datasets in this grid: {', '.join(scores['tasks'])}."]
    if any(r["degenerate_on"] for r in recs):
        notes.append(f"{validity.MARK.strip()} (datasets): the row is degenerate on those "
                     "datasets (more than half of its scored seeds flagged d_at_chance or "
                     "at_chance, the README's \"Failure flags\"); its runs there are pooled like "
                     "any other's, so its aggregate describes runs at chance there.")
    where = f"grid {grid}" if grid else "records no grid asked for"
    return Table(f"aggregate-{_stem(grid)}", f"Aggregate statistics per trick ({where})",
                 columns, rows, pd.DataFrame(recs), notes)


def _stem(grid: str) -> str:
    import re
    return re.sub(r"[^A-Za-z0-9._+-]", "_", grid or "store")


# -- power ------------------------------------------------------------------------------------
def power_table(tables: list[Table]) -> Table | None:
    rows, recs = [], []
    for t in tables:
        cols = [c[2:-3] for c in t.numbers.columns if c.startswith("d_") and c.endswith("_sd")]
        for m in cols:
            pw = power.table_power(t.numbers, m)
            if not pw or not math.isfinite(pw["sd_diff"]):
                continue
            rec = {"table": t.name, **pw}
            recs.append(rec)
            seeds = ("–" if not m.startswith("modes") else
                     (f"> {power.MAX_SEEDS}" if pw["seeds_1"] == math.inf else
                      str(int(pw["seeds_1"])) if math.isfinite(pw["seeds_1"]) else "–"))
            rows.append([Cell(t.name), Cell(m), Cell(str(pw["n"])), Cell(num(pw["sd_diff"])),
                         Cell(num(pw["floor"])), Cell(num(pw["detectable"])), Cell(seeds)])
    if not rows:
        return None
    notes = [
        "From the seed variances this report stores: sd of differences = the pooled sd of each "
        "table's paired differences (rows against their references). Smallest detectable |Δ|: "
        "80% power of the two-sided paired t-test at α = 0.05 with the table's (median) seed "
        "count, the planning approximation (`bench.report.power`). The exact sign-flip test the "
        f"tables use cannot reject at all below {power.MIN_SEEDS} seeds (its smallest p, 2 / "
        "2^n, is in the 'smallest p' column); seeds for 1 mode: the fewest paired seeds (at "
        f"least {power.MIN_SEEDS}) that detect a 1-mode Δ with 80% power at this spread. Holm "
        "over m claims needs more: α / m at its first step."]
    return Table("power", "Power: the smallest Δ each table can detect, and the seeds a 1-mode "
                 "effect needs", ["table", "metric", "seeds", "sd of differences",
                                  "smallest p (sign-flip)", "detectable |Δ| (80%)",
                                  "seeds for 1 mode"], rows, pd.DataFrame(recs), notes)


# -- into a report ----------------------------------------------------------------------------
def add_to_report(report, figs: Path, bootstrap: bool = False) -> None:
    """Add the verdict, aggregate and power tables (`report.study_tables`, written and indexed
    before the design tables) and the verdict and performance-profile figures (first in
    `report.figures`) to `report` (bench.report.build.Report), and set
    `report.verdict` to the Markdown that opens index.md."""
    from bench.report import profiles
    from bench.report.tables import to_markdown

    df = report.df
    specs = report.catalog.grids if getattr(report, "catalog", None) is not None else {}
    tables, figures_out = [], []
    verdict = verdict_table(df, bootstrap, specs)
    if verdict is not None:
        tables.append(verdict)
        paths = profiles.verdict_figure(verdict.numbers.to_dict("records"), figs / "verdict")
        figures_out += [(p, "verdict: Δ of every trick per dataset with its 95% interval, "
                            "coloured by verdict") for p in paths if p.suffix == ".png"]
        body = to_markdown(verdict).split("\n", 2)[2]  # without its "### title"
        report.verdict = ["## Verdict", "", body.rstrip(), "",
                          "See also [tables/verdict.md](tables/verdict.md) (+ .tex, .csv)" + (
                              " and [figures/verdict.png](figures/verdict.png)" if paths else "")
                          + ".", ""]
    for grid, scores in aggregate_scores(df, specs).items():
        table = aggregate_table(df, grid, scores)
        if table is not None:
            tables.append(table)
        # one profile per grid, of the score comparable across most datasets (rendering is
        # the report's costliest step; the aggregate table has every score)
        for name in [n for n in aggregate.NORMALISED if n in scores["scores"]][:1]:
            per_label = scores["scores"][name]
            base = scores["baseline"].get(name, {})
            tricks = [lbl for lbl in per_label if base.get(lbl)]
            chunks = [tricks[i:i + PROFILE_PANELS] for i in range(0, len(tricks), PROFILE_PANELS)]
            for k, chunk in enumerate(chunks, 1):
                part = f"-{k}" if len(chunks) > 1 else ""
                stem = figs / f"profile-{_stem(grid)}-{_stem(name.replace('/', '_per_'))}{part}"
                title = f"{grid or 'store'}, {name}" + (f" ({k}/{len(chunks)})" if part else "")
                paths = profiles.profile_figure({lbl: per_label[lbl] for lbl in chunk}, base,
                                                name, stem, title)
                figures_out += [(p, f"performance profile of {name} per trick vs its baseline, "
                                    f"{title}") for p in paths if p.suffix == ".png"]
    pw = power_table(report.tables)
    if pw is not None:
        tables.append(pw)
    report.study_tables[:0] = tables
    report.figures[:0] = figures_out
