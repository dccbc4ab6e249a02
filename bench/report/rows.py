"""Helpers the table views share: a variant's scores by seed, row labels that tell setups
apart, the Δ cell text and the note on how intervals, * and p were computed."""
from __future__ import annotations

import math

import pandas as pd

from bench.core import setups
from bench.report import stats
from bench.report.tables import num


def by_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    """The scored values of one variant's rows (one cell per seed), indexed by seed."""
    done = rows[(rows["status"] == "done")].drop_duplicates("seed")
    if metric not in done:
        return pd.Series(dtype=float)
    return pd.Series(done[metric].to_numpy(dtype=float), index=done["seed"].to_numpy())


def _join(name: str, extra: str) -> str:
    if not extra:
        return name
    return f"{name[:-1]}, {extra}]" if name.endswith("]") else f"{name} [{extra}]"


def labels(groups: list[pd.DataFrame], name=None, shown_too: tuple[str, ...] = ()) -> list[str]:
    """Each group's name (`name(rows)`, default its row_label) plus the setup fields that set it
    apart from the table's other rows (e.g. 'baseline [width=64]'), so no two setups share one.
    `shown_too`: swept keys the table shows elsewhere (the tuned view's lr column)."""
    first = [g.iloc[0] for g in groups]
    extra = setups.suffixes([r["setup"] for r in first],
                            [[*r["sweep"], *r["tune"], *shown_too] for r in first])
    out = [_join(name(g) if name else g["row_label"].iloc[0], e) for g, e in zip(groups, extra)]
    for label in {x for x in out if out.count(x) > 1}:  # same setup: params or bookkeeping differ
        twins = [i for i, x in enumerate(out) if x == label]
        fields = [{**{f"{t}.{k}": v for t, ps in first[i]["trick_params"].items()
                      for k, v in ps.items()},
                   **{k: first[i].get(k) for k in ("log_every", "checkpoint_every")}}
                  for i in twins]
        keys = [k for k in dict.fromkeys(k for f in fields for k in f)
                if len({repr(f.get(k)) for f in fields}) > 1]
        for i, f in zip(twins, fields):
            out[i] = _join(label, ", ".join(f"{k}={f.get(k)}" for k in keys))
    return out


def ci_note(bootstrap: bool) -> str:
    """Which method made the intervals, the * and the p-values (one sentence for every table)."""
    ci = (f"BCa bootstrap (scipy.stats.bootstrap, 9,999 resamples) where n ≥ "
          f"{stats.BOOTSTRAP_MIN_N} paired seeds, paired t otherwise" if bootstrap else "paired t")
    return (f"95% CI: {ci}; * = paired t-test p < 0.05 (unadjusted; the same as the paired t "
            "interval excluding 0); p from the paired t-test.")


def delta_text(d: stats.Delta) -> str:
    if d.n == 0:
        return "–"
    text = num(d.delta, signed=True)
    if math.isfinite(d.lo):
        return text + f" [{num(d.lo, signed=True)}, {num(d.hi, signed=True)}]" + (
            " *" if d.significant else "")
    return text + f" (n={d.n})"
