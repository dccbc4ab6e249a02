"""The tuned view of an LR sweep (`[tune] lr`): each variant at its own best LR beside the
common-LR view, each compared with the baseline at its own sweep point."""
from __future__ import annotations

import json
import math

import pandas as pd

from bench.core import setups
from bench.report import stats, validity
from bench.report.rows import by_seed, ci_note, delta_text, labels
from bench.report.tables import ARROWS, Cell, Table, num
from bench.store.results import TUNE_METRIC, direction, kind_of, row_label_of


def tuned_table(name: str, title: str, part: pd.DataFrame, headline: list[str],
                bootstrap: bool = False, metric: str | None = None,
                base_lr: float | None = None) -> Table | None:
    """Each variant at the LR with the best mean (over seeds) of `metric`, beside the common-LR
    view: every variant at one LR (`base_lr` when it was tried, else the baseline's best). With
    other sweep axes (steps, batch size) each variant is compared with the baseline at its own
    sweep point: the same setup but the lr."""
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
    records, rows_out = [], []
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
                        f"common_d_{m}_hi": c.hi, f"common_d_{m}_p": c.p})
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
    notes = [f"Each variant at its own best LR, chosen on the mean over seeds of `{metric}`, and "
             "its paired Δ against the baseline at the baseline's own best LR, at the same sweep "
             "point (the same setup but the lr); the choice and the score use the same seeds, so "
             "these numbers are optimistic (most for noisy variants). Beside it the common-LR "
             f"view: every variant and the baseline at "
             f"{f'lr {num(common)}' if one else 'the common lr'} ({which}). "
             + ci_note(bootstrap) + " The design table holds every LR as its own row."]
    if any(validity.MARK in r[0].text for r in rows_out):
        notes.append(validity.MARK_NOTE)
    return Table(name, title, columns, rows_out, pd.DataFrame(records), notes)
