"""What a row's Δ is taken against: the cells of the same setup (`bench.core.setups`) with the
reference's tricks. One variant is chosen when several match (they differ only in bookkeeping,
e.g. log_every): the one that shares the row's bookkeeping too, then the one with the most
scored seeds, then the oldest, so seeds of two runs are never mixed."""
from __future__ import annotations

import pandas as pd

BOOKKEEPING_COLUMNS = ("log_every", "checkpoint_every")


def choose(cand: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame | None:
    """The rows of one variant among `cand` (all of the same setup as `rows`), or None."""
    cand = cand.drop_duplicates("cell_id")
    if cand.empty:
        return None
    if cand["variant_id"].nunique() == 1:
        return cand
    mine = tuple(rows[c].iloc[0] for c in BOOKKEEPING_COLUMNS if c in rows)

    def rank(item):
        _, r = item
        same = tuple(r[c].iloc[0] for c in BOOKKEEPING_COLUMNS if c in r) == mine
        return (not same, -int((r["status"] == "done").sum()), r["created_at"].min())
    return min(cand.groupby("variant_id", sort=False), key=rank)[1]


def _same_setup(pool: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    return pool[pool["setup_id"] == rows["setup_id"].iloc[0]]


def baseline_of(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame | None:
    """The baseline of the variant's setup (None for a baseline row itself)."""
    if (rows["role"] == "baseline").all() or rows["tricks"].iloc[0] == ():
        return None
    cand = _same_setup(pool, rows)
    return choose(cand[cand["tricks"].map(len) == 0], rows)


def all_of(rows: pd.DataFrame, pool: pd.DataFrame) -> pd.DataFrame | None:
    """Leave-one-out: the 'all' row of the same setup that the others are compared with."""
    if (rows["role"] == "all").all() or (rows["role"] == "baseline").all():
        return None
    cand = _same_setup(pool, rows)
    return choose(cand[cand["role"] == "all"], rows)


def single_of(rows: pd.DataFrame, trick: str, pool: pd.DataFrame) -> pd.DataFrame | None:
    """The trick alone at the rows' sweep point: same setup (the data axes), and the trick's own
    params and version as in the rows."""
    params = rows["trick_params"].iloc[0].get(trick)
    version = rows["trick_versions"].iloc[0].get(trick)
    cand = _same_setup(pool, rows)
    cand = cand[cand["tricks"].map(lambda x: x == (trick,))
                & cand["trick_params"].map(lambda p: p.get(trick) == params)
                & cand["trick_versions"].map(lambda v: v.get(trick) == version)]
    return choose(cand, rows)
