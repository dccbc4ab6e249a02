"""The tuned views. Without held-out seeds (`[tune] lr` alone): each variant at its own best LR
beside the common-LR view, each compared with the baseline at its own sweep point -- labelled
optimistic, since the LR is chosen and reported on the same seeds. With held-out tuning
(`tune_seeds`, bench/schedule/tuning.py): the table of how each setting was chosen on the tuning seeds
with the optimistic same-seed Δ beside it, and the Δ references the held-out tables use."""
from __future__ import annotations

import json
import math

import pandas as pd

from bench.core import setups
from bench.report import budget, stats, validity
from bench.report.rows import (by_seed, ci_note, claim_metric, delta_text, labels, light, primary_of,
                               test_line)
from bench.report.tables import ARROWS, Cell, Table, num
from bench.store.results import TUNE_METRIC, direction, kind_of, row_label_of


def tuned_table(name: str, title: str, part: pd.DataFrame, headline: list[str],
                bootstrap: bool = False, metric: str | None = None,
                base_lr: float | None = None) -> Table | None:
    """Each variant at the LR with the best mean (over seeds) of `metric`, beside the common-LR
    view: every variant at one LR (`base_lr` when it was tried, else the baseline's best). With
    other sweep axes (steps, batch size) each variant is compared with the baseline at its own
    sweep point: the same setup but the lr."""
    part = light(part)  # fast selections (rows.light)
    tuned = part[part["tune_lr"].notna()].drop_duplicates("cell_id")
    if tuned.empty:
        return None
    metric = metric or TUNE_METRIC[kind_of(part)]
    if metric not in tuned:
        return None
    sign = 1 if direction(metric) == "up" else -1
    point = tuned["setup"].map(lambda st: setups.setup_id(st, without=setups.LR_KEYS))
    no_lr = tuned["sweep"].map(lambda sw: {k: v for k, v in sw.items() if k != "lr"})
    key = point + " " + tuned["label"] + " " + no_lr.map(
        lambda sw: json.dumps(sw, sort_keys=True, default=str))
    chosen, base_at = {}, {}  # base_at: sweep point -> the baseline's key
    for k, rows in tuned.groupby(key, sort=False):
        means = {lr: stats.mean_std(by_seed(r, metric))[0] for lr, r in rows.groupby("tune_lr")}
        finite = {lr: v for lr, v in means.items() if math.isfinite(v)}
        if finite:
            lr = max(finite, key=lambda x: sign * finite[x])
            chosen[k] = (lr, rows[rows["tune_lr"] == lr], means, rows)
            if rows["tricks"].iloc[0] == ():
                base_at.setdefault(point[rows.index[0]], k)
    names = labels([c[3] for c in chosen.values()], shown_too=("lr",),
                   name=lambda r: row_label_of(r["label"].iloc[0], no_lr[r.index[0]], {}))
    records, rows_out, claims = [], [], []
    heads = [m for m in headline if m in tuned]
    for (k, (lr, rows, means, every_lr)), label in zip(chosen.items(), names):
        base_key = base_at.get(point[rows.index[0]])
        base = chosen[base_key] if base_key is not None else None
        tried = base[2] if base else means  # the point's baseline's lrs
        common = base_lr if base_lr in tried else (base[0] if base else None)
        rec = {"variant": label, "best_lr": lr, "common_lr": common,
               "lrs_tried": ", ".join(num(x) for x in sorted(means))}
        cells = [Cell(validity.mark(rec["variant"], rows)), Cell(num(lr)), Cell(rec["lrs_tried"]),
                 Cell(num(common))]
        at_common = every_lr[every_lr["tune_lr"] == common]
        base_at_common = base[3][base[3]["tune_lr"] == common] if base else None
        for m in heads:
            mean, sd, n = stats.mean_std(by_seed(rows, m))
            rec.update({f"{m}_mean": mean, f"{m}_std": sd, f"{m}_n": n})
            d = c = stats.NO_DELTA
            if base is not None and k != base_key:
                d = stats.paired_delta(by_seed(rows, m), by_seed(base[1], m), bootstrap=bootstrap)
                c = stats.paired_delta(by_seed(at_common, m), by_seed(base_at_common, m),
                                       bootstrap=bootstrap)
            rec.update({f"d_{m}": d.delta, f"d_{m}_lo": d.lo, f"d_{m}_hi": d.hi,
                        f"d_{m}_p": d.p, f"common_d_{m}": c.delta, f"common_d_{m}_lo": c.lo,
                        f"common_d_{m}_hi": c.hi, f"common_d_{m}_p": c.p,
                        f"d_{m}_p_perm": d.p_perm, f"common_d_{m}_p_perm": c.p_perm})
            claims += [d, c]
            cells.append(Cell(f"{num(mean)} ± {num(sd)} ({n})" if n > 1 else num(mean)))
            cells.append(Cell(delta_text(d)))
            cells.append(Cell(delta_text(c)))
        records.append(rec)
        rows_out.append(cells)
    commons = {r["common_lr"] for r in records}
    one = len(commons) == 1
    common = next(iter(commons)) if one else None
    columns = ["variant", "best lr", "lrs tried", "common lr"]
    for m in heads:
        columns += [f"{m} {ARROWS.get(direction(m), '')}".rstrip(), f"Δ {m} (both tuned)",
                    f"Δ {m} at lr {num(common)}" if one else f"Δ {m} at the common lr"]
    if one:  # a single common lr is named in the header: no column of its own
        columns.remove("common lr")
        rows_out = [r[:3] + r[4:] for r in rows_out]
    which = ("the grid base LR" if base_lr is not None and common == base_lr else
             "the baseline best LR") if one else (
        "the grid base LR where it was tried, else the baseline's best LR at that sweep point")
    numbers = _holm_csv(pd.DataFrame(records), [f"{p}d_{m}_p_perm" for m in heads
                                                for p in ("", "common_")])
    notes = [_test_line(claims, "(both tuned, common lr) × metric(s) × rows"),
             f"Optimistic (selected and reported on the same seeds). "
             f"Each variant at its own best LR, chosen on the mean over seeds of `{metric}`, and "
             "its paired Δ against the baseline at the baseline's own best LR, at the same sweep "
             "point (the same setup but the lr); the choice and the score use the same seeds, so "
             "these numbers are optimistic (most for noisy variants). Beside it the common-LR "
             f"view: every variant and the baseline at "
             f"{f'lr {num(common)}' if one else 'the common lr'} ({which}). "
             + ci_note(bootstrap) + " The design table holds every LR as its own row."]
    if any(validity.MARK in r[0].text for r in rows_out):
        notes.append(validity.MARK_NOTE)
    return Table(name, title, columns, rows_out, numbers, notes)


def _holm_csv(numbers: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`<col>_p_holm` beside each sign-flip p column: Holm over all of them together."""
    for col, adjusted in stats.holm_columns(numbers, [c for c in columns if c in numbers]).items():
        numbers[col.replace("_p_perm", "_p_holm")] = adjusted
    return numbers


def _test_line(claims, family: str) -> str:
    """The test line of a table whose * stays unadjusted (the Holm p is in its CSV)."""
    return test_line(claims, family=family,
                     holm_where=" (`_p_holm` in the CSV; * unadjusted)")


# -- held-out tuning (bench/schedule/tuning.py): chosen on tuning seeds, reported on evaluation seeds --------
# What a Δ compares across a held-out grid: the setup but the tuned values (the lr; trick params
# are not part of the setup) and, under `budget = "evals"`, the steps, which the budget sets per
# trick. The untuned sweep point (`sweep`) must match.
HELD_OUT_FREE = setups.LR_KEYS + ("train.steps",)


def _point(rows: pd.DataFrame) -> str:
    r = rows.iloc[0]
    return setups.setup_id(r["setup"], without=HELD_OUT_FREE) + json.dumps(
        r["sweep"], sort_keys=True, default=str)


def is_held_out(part: pd.DataFrame) -> bool:
    """Whether these rows come from a grid with held-out tuning (`tune_seeds`)."""
    return "seed_role" in part and bool((part["seed_role"] != "").any())


def held_out_baseline(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame | None:
    """The baseline a held-out row is compared with: the baseline's evaluation cells at its own
    chosen setting, same setup but the tuned values (and the steps, which `budget = "evals"`
    sets per trick), paired by evaluation seed. None for a baseline row."""
    from bench.report.pairing import choose

    if (rows["role"] == "baseline").all() or rows["tricks"].iloc[0] == ():
        return None
    base = pool[(pool["seed_role"] == "eval") & (pool["tricks"].map(len) == 0)]
    if base.empty:
        return None
    want = _point(rows)
    return choose(base[[_point(base.loc[[i]]) == want for i in base.index]], rows)


def budget_baseline(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame | None:
    """`budget = "evals"` without held-out tuning: the baseline of the same setup but the steps
    (which the budget sets per trick) and at the same lr."""
    from bench.report.pairing import choose

    if (rows["role"] == "baseline").all() or rows["tricks"].iloc[0] == ():
        return None
    want = setups.setup_id(rows["setup"].iloc[0], without=("train.steps",))
    base = pool[(pool["tricks"].map(len) == 0)]
    base = base[base["setup"].map(lambda st: setups.setup_id(st, without=("train.steps",)))
                == want]
    return choose(base, rows)


def _seeds(rows: pd.DataFrame) -> list[int]:
    return sorted({int(s) for s in rows["seed"]})


def held_out_note(eval_rows: pd.DataFrame) -> str:
    tuned_on = sorted({int(s) for t in eval_rows["tuned_on"] for s in t})
    metric = ", ".join(sorted(set(eval_rows["tune_metric"]) - {""})) or "–"
    return (f"Held out: each variant (the baseline too) at the setting chosen on tuning seeds "
            f"{tuned_on} by the best mean {metric}, trained and scored on evaluation seeds "
            f"{_seeds(eval_rows)}, which took no part in the choice; Δ pairs each evaluation "
            f"seed with the baseline's at the baseline's own chosen setting.")


def held_out_rows(part: pd.DataFrame) -> pd.DataFrame:
    """The evaluation-seed rows of a held-out grid (what its tables and verdicts report)."""
    return part[part["seed_role"] == "eval"]


def tuning_table(name: str, title: str, part: pd.DataFrame, headline: list[str],
                 bootstrap: bool = False) -> Table | None:
    """How each variant's setting was chosen (every candidate's mean on the tuning seeds) and,
    beside it, the *optimistic* same-seed view: the chosen setting's Δ against the baseline's
    chosen setting on the very tuning seeds that chose both (selected and reported on the same
    seeds, so biased in the variant's favour; the held-out table is the one to read)."""
    part = light(part)  # fast selections (rows.light)
    tune = part[part["seed_role"] == "tune"].drop_duplicates("cell_id")
    evals = held_out_rows(part).drop_duplicates("cell_id")
    if evals.empty:
        return None
    groups = [g for _, g in evals.groupby("variant_id", sort=False)]
    groups.sort(key=lambda g: (g["tricks"].iloc[0] != (), g["member_order"].min()))
    chosen_tune = {}  # variant label + point -> tuning rows at the chosen setting
    for g in groups:
        r = g.iloc[0]
        same = tune[(tune["label"] == r["label"]) & (tune["tune"].map(
            lambda t, want=r["tune"]: t == want))]
        same = same[[_point(same.loc[[i]]) == _point(g) for i in same.index]] if len(same) \
            else same
        chosen_tune[g.index[0]] = same
    base_group = next((g for g in groups if g["tricks"].iloc[0] == ()), None)
    base_tune = chosen_tune.get(base_group.index[0]) if base_group is not None else None
    heads = [m for m in headline if m in part]
    columns = ["variant", "chosen", "tuned on", "candidates (mean on tuning seeds)"] + [
        f"optimistic Δ {m}" for m in heads]
    rows_out, records, claims = [], [], []
    for g, label in zip(groups, labels(groups, shown_too=("lr",))):
        r = g.iloc[0]
        scores = r["tune_scores"]
        cand = "; ".join(f"{k}: {num(v[0])} ({v[1]})" for k, v in scores.items()) or "–"
        rec = {"variant": label, "chosen": json.dumps(r["tune"], sort_keys=True),
               "tuned_on": list(r["tuned_on"]), "metric": r["tune_metric"],
               "candidates": json.dumps(scores, sort_keys=True)}
        cells = [Cell(r["label"]), Cell(", ".join(
            f"{k}={num(v) if isinstance(v, float) else v}" for k, v in r["tune"].items()) or "–"),
                 Cell(str(list(r["tuned_on"])) if len(r["tuned_on"]) else "– (nothing to tune)"),
                 Cell(f"{r['tune_metric']}: {cand}" if scores else "–")]
        for m in heads:
            d = stats.NO_DELTA
            mine = chosen_tune.get(g.index[0])
            if base_tune is not None and g is not base_group and mine is not None:
                d = stats.paired_delta(by_seed(mine, m), by_seed(base_tune, m),
                                       bootstrap=bootstrap)
            rec.update({f"opt_d_{m}": d.delta, f"opt_d_{m}_lo": d.lo, f"opt_d_{m}_hi": d.hi,
                        f"opt_d_{m}_n": d.n, f"opt_d_{m}_p_perm": d.p_perm})
            claims.append(d)
            cells.append(Cell(delta_text(d)))
        rows_out.append(cells)
        records.append(rec)
    numbers = _holm_csv(pd.DataFrame(records), [f"opt_d_{m}_p_perm" for m in heads])
    notes = [_test_line(claims, "metric(s) × rows"), held_out_note(evals),
             "optimistic Δ: the chosen setting against the baseline's chosen setting on the "
             "tuning seeds that chose them — optimistic (selected and reported on the same "
             "seeds); shown only beside the held-out table, which reports the evaluation seeds. "
             + ci_note(bootstrap)]
    return Table(name, title, columns, rows_out, numbers, notes)


def verdict_delta(variant: pd.Series, baseline: pd.Series, bootstrap: bool = False
                  ) -> stats.Delta:
    """The test behind a verdict line: the paired Δ over matched evaluation seeds with its 95%
    interval and the exact paired sign-flip p (`stats.sign_flip_p`)."""
    return stats.paired_delta(variant, baseline, bootstrap=bootstrap)


def verdict(d: stats.Delta, metric: str, p: float | None = None) -> str:
    """'helps' / 'hurts' when the sign-flip test rejects Δ = 0 at 0.05 (`p`: its Holm-adjusted
    value where several lines are claimed together; default the unadjusted `d.p_perm`), by the
    metric's direction; else 'no detectable effect'; 'no scores' without a pair."""
    if d.n == 0:
        return "no scores"
    p = d.p_perm if p is None else p
    if not (p is not None and math.isfinite(p) and p < 1 - stats.LEVEL):
        return "no detectable effect"
    better = (d.delta > 0) == (direction(metric) == "up")
    return "helps" if better else "hurts"


def verdict_lines(df: pd.DataFrame, tricks: list[str], bootstrap: bool = False,
                  specs: dict | None = None) -> list[str]:
    """One line per trick and dataset of a held-out grid: the verdict on the tuning metric (the
    grid's pre-registered primary metric where it sets one: `specs` {grid: spec}), its Δ against
    the baseline with the interval, the sign-flip p (Holm-adjusted over the lines, or over each
    dataset's lines where the grid pre-registers primary metrics), the evaluation seeds and how
    the setting was chosen."""

    out = []
    if df is None or df.empty or not is_held_out(df):
        return out
    found = []  # (data, trick, metric, delta, rows) or (text,) for a line without a test
    df = light(df)  # fast selections (rows.light)
    for data, pool in df.groupby("data", sort=False):
        evals = held_out_rows(pool)
        for trick in tricks:
            rows = evals[evals["tricks"].map(lambda t, trick=trick: t == (trick,))]
            rows = rows.drop_duplicates("cell_id")
            if rows.empty:
                continue
            status = set(rows["status"])
            if status <= {"not-applicable", "conflict"}:
                found.append((f"{data}  {trick}: not applicable ({rows['reason'].iloc[0]})",))
                continue
            spec = (specs or {}).get(rows["grid"].iloc[0] if "grid" in rows else "", {})
            primary = primary_of(spec, rows["dataset"].iloc[0])
            metric = claim_metric(spec, rows, pool)
            base = held_out_baseline(rows, pool)
            d = stats.NO_DELTA if base is None else verdict_delta(
                by_seed(rows, metric), by_seed(base, metric), bootstrap)
            fragile = budget.sensitivity(d, rows, base, metric).fragile
            found.append((data, trick, metric, d, rows, fragile, data if primary else ""))
    tested = [f for f in found if len(f) > 1]
    holm_of = {}
    for fam in dict.fromkeys(f[6] for f in tested):  # one family, or one per dataset
        mine = [f for f in tested if f[6] == fam]
        holm_of.update(zip(map(id, mine), stats.holm([f[3].p_perm for f in mine])))
    for f in found:
        if len(f) == 1:
            out.append(f[0])
            continue
        data, trick, metric, d, rows, fragile, _ = f
        ph = holm_of[id(f)]
        r = rows.iloc[0]
        ci = (f" [{num(d.lo, signed=True)}, {num(d.hi, signed=True)}]"
              if math.isfinite(d.lo) else "")
        test = (f", sign-flip p {d.p_perm:.2g} (Holm {ph:.2g}; smallest possible "
                f"{d.p_floor:.2g})" if math.isfinite(d.p_perm) else "")
        setting = ", ".join(f"{k}={num(v) if isinstance(v, float) else v}"
                            for k, v in r["tune"].items())
        said = "fragile" if fragile else verdict(d, metric, ph)
        out.append(f"{data}  {trick}: {said}: Δ {metric} "
                   f"{num(d.delta, signed=True) if d.n else '–'}{ci}{test} over {d.n} evaluation "
                   f"seeds {_seeds(rows)}" + (f"; {setting} chosen on tuning seeds "
                                              f"{list(r['tuned_on'])}" if setting else ""))
    if out:
        per_data = any(len(f) > 1 and f[6] for f in found)
        out.append("verdict: helps / hurts where the exact paired sign-flip test, Holm-adjusted "
                   + ("within each dataset over these lines (its pre-registered primary metric)"
                      if per_data else "over these lines")
                   + ", gives p < 0.05, else no detectable effect (it cannot go below 2 / 2^n "
                   "with n seeds); fragile where its decision differs at half the budget "
                   "(stored curves); interval: " + ci_note(bootstrap).split(" (")[0]
                   + ".")
    return out
