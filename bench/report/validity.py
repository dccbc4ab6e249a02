"""The degenerate-run checks in the report (definitions and tolerances: `bench.core.chance`).

`add_flags(df, refs)` adds `d_at_chance` and `at_chance` to each scored row's `flags` and
`flag_details` (from the stored `d_adv` curve, the cell's tricks and its final metrics against
the chance reference rows), so stores written before the checks existed get them too, and the
tables' flags column shows them. A table row is degenerate when more than half of its scored
seeds carry either flag; `withheld(rows, ref)` says whether the Δ of a degenerate row against a
degenerate reference row is withheld: printed as WITHHELD_TEXT, NaN in the CSV, and so out of
the Holm family."""
from __future__ import annotations

from typing import Mapping

import pandas as pd

from bench.core.chance import VALIDITY_FLAGS, at_chance, d_at_chance, d_check
from bench.core.metric_directions import METRIC_DIRECTIONS

WITHHELD_TEXT = "—, degenerate"
WITHHELD_NOTE = (f"'{WITHHELD_TEXT}': both this row and its reference are degenerate (more than "
                 "half of their scored seeds flagged d_at_chance, D's loss at its chance value "
                 "for most of training, or at_chance, final metrics no better than a chance "
                 "reference row beyond seed noise), so their difference is not an effect; it "
                 "is left out of the Holm adjustment.")


def cell_flags(row: Mapping, chance_rows: list, headline: list[str]) -> list[dict]:
    """The validity flags of one scored cell (a `load_records` row)."""
    if row.get("status") != "done":
        return []
    found = []
    tricks = dict(row.get("trick_params") or {})
    for name in row.get("tricks") or ():
        tricks.setdefault(name, {})
    chance, how = d_check(tricks)  # None: not checked (a trick owns the loss, or holds D at chance)
    curve = (row.get("curves") or {}).get("d_adv")
    if chance is not None and curve:
        found.append(d_at_chance(curve, chance, how))
    if chance_rows:
        metrics = {m: row[m] for m in headline if m in row and pd.notna(row[m])}
        found.append(at_chance(metrics, chance_rows, headline, METRIC_DIRECTIONS,
                               step=int(row.get("step") or 0)))
    return [f for f in found if f is not None]


def add_flags(df: pd.DataFrame, refs_by_data: Mapping[str, object], headline_of) -> pd.DataFrame:
    """`df` with the validity flags added to `flags` / `flag_details` (refs_by_data: {data:
    References}; headline_of(rows of one data) -> its headline metrics)."""
    if df.empty:
        return df
    flags, details = list(df["run_flags"]), list(df["flag_details"])
    for data, part in df.groupby("data", sort=False):
        refs = refs_by_data.get(data)
        chance_rows = refs.chance() if refs is not None else []
        headline = headline_of(part)
        for i in part.index:
            pos = df.index.get_loc(i)
            new = [f for f in cell_flags(df.loc[i], chance_rows, headline)
                   if f["flag"] not in flags[pos]]
            if new:
                flags[pos] = tuple(flags[pos]) + tuple(f["flag"] for f in new)
                details[pos] = list(details[pos]) + new
    out = df.copy()
    out["run_flags"], out["flag_details"] = flags, details
    return out


def degenerate(rows: pd.DataFrame) -> bool:
    """More than half of the row's scored seeds carry a validity flag."""
    done = rows[rows["status"] == "done"].drop_duplicates("seed")
    if done.empty:
        return False
    hit = sum(any(f in VALIDITY_FLAGS for f in flags) for flags in done["run_flags"])
    return hit > len(done) / 2


def withheld(rows: pd.DataFrame, ref: pd.DataFrame | None) -> bool:
    """The Δ of `rows` against `ref` is not an effect: both are degenerate."""
    return ref is not None and degenerate(rows) and degenerate(ref)


MARK = " †"
MARK_NOTE = ("†: a degenerate row (more than half of its scored seeds flagged d_at_chance or "
             "at_chance; the flags are defined in the README's \"Failure flags\").")


def mark(label: str, rows: pd.DataFrame) -> str:
    """`label` with MARK when the row is degenerate (tables without a flags column)."""
    return label + MARK if degenerate(rows) else label


def runs_note(runs: pd.DataFrame) -> list[str]:
    """For tables of single runs (factorial effects): how many carry a validity flag."""
    hit = sum(any(f in VALIDITY_FLAGS for f in flags) for flags in runs["run_flags"])
    return [f"{hit} of {len(runs)} scored runs are degenerate (d_at_chance or at_chance): "
            "effects estimated from them are not effects of the tricks."] if hit else []
