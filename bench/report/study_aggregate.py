"""The aggregate and power tables of a report (bench.report.study): per trick across seeds and
datasets on scores comparable across datasets (IQM and probability of improvement with their
intervals, `bench.report.aggregate`), and per delta table the smallest Δ detectable at 80% power
(`bench.report.power`)."""
from __future__ import annotations

import math

import pandas as pd

from bench.report import aggregate, power, validity
from bench.report.study_units import _blocked, _label, units
from bench.report.tables import Cell, Table, num


def _interval(v, lo, hi, signed=True) -> str:
    if v is None or not (v == v):
        return "–"
    text = num(v, signed=signed)
    if lo == lo and hi == hi and lo is not None:
        text += f" [{num(lo, signed=signed)}, {num(hi, signed=signed)}]"
    return text


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
