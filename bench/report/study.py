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

This module holds the verdict and `add_to_report`; the units every table reads (one per grid and
dataset) are in `study_units`, the aggregate and power tables in `study_aggregate`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import aggregate, budget, stats, validity
from bench.report.rows import by_seed
from bench.report.study_aggregate import (_interval, _stem, aggregate_scores, aggregate_table,
                                          power_table)
from bench.report.study_units import _blocked, _label, units
from bench.report.tables import Cell, Table, num
from bench.store.results import direction

__all__ = ["aggregate_scores", "aggregate_table", "add_to_report", "power_table", "units",
           "verdict_of", "verdict_records", "verdict_table"]

PROFILE_PANELS = 25  # panels per performance-profile figure (5 x 5 stays readable)


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
