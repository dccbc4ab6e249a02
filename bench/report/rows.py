"""Helpers the table views share: a variant's scores by seed, row labels that tell setups
apart, the Δ cell text and the note on how intervals, * and p were computed."""
from __future__ import annotations

import math

import pandas as pd

from bench.core import setups
from bench.report import stats
from bench.report.tables import num
from bench.store.results import TUNE_METRIC, kind_of


def light(frame: pd.DataFrame, keep: tuple[str, ...] = ()) -> pd.DataFrame:
    """`frame` without its `attrs` (but `keep`): pandas deep-copies a frame's attrs on every
    selection, and `load_records` puts the grids' member lists there, so each boolean mask on a
    row frame of a large store cost milliseconds. The tables select thousands of times."""
    out = frame.copy(deep=False)  # one deep copy of the attrs, here
    out.attrs = {k: frame.attrs[k] for k in keep if k in frame.attrs}
    return out


def by_seed(rows: pd.DataFrame, metric: str) -> pd.Series:
    """The scored values of one variant's rows (one cell per seed), indexed by seed."""
    if metric not in rows:
        return pd.Series(dtype=float)
    # only the two columns: copying every column of a row frame (curves, configs) is slow
    done = rows.loc[rows["status"] == "done", ["seed", metric]].drop_duplicates("seed")
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
    return (f"95% CI: {ci} (a description of the effect's size and spread); * = exact paired "
            "sign-flip test p < 0.05 (unadjusted), the test behind every p here; at a few seeds "
            "the two can disagree (the test's smallest p is 2 / 2^n: 0.25 at 3 seeds, 0.0625 at "
            "5).")


def test_line(deltas, n_metrics: int = 1, family: str | None = None,
              holm_where: str = "") -> str:
    """One line per table: the test, the correction and the number of seeds of its claims
    (`family`: what the claims are, default '<n> headline metric(s) × rows'; `holm_where`: where
    the adjusted p is, when the table's * stays unadjusted)."""
    tested = [d for d in deltas if d.n > 0 and math.isfinite(d.p_perm)]
    ns = sorted({d.n for d in tested})
    if not tested:
        return "**Test:** none (no paired seeds)."
    seeds = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
    floor = stats.sign_flip_floor(ns[-1])
    reach = ("" if floor < 1 - stats.LEVEL else
             f"; at {ns[-1]} seeds no claim can reach p < {1 - stats.LEVEL:.2g}")
    family = family or f"{n_metrics} headline metric(s) × rows"
    return (f"**Test:** exact paired sign-flip (permutation) test, two-sided; **correction:** "
            f"Holm over the table's {len(tested)} claims ({family}){holm_where}; "
            f"**seeds:** {seeds} paired (smallest attainable p {num(floor)}{reach}).")


def delta_text(d: stats.Delta, tested: bool = True) -> str:
    """Δ [lo, hi] with * where the test rejects; `tested` False: a secondary Δ (described, not a
    claim), never starred."""
    if d.n == 0:
        return "–"
    text = num(d.delta, signed=True)
    if math.isfinite(d.lo):
        return text + f" [{num(d.lo, signed=True)}, {num(d.hi, signed=True)}]" + (
            " *" if d.significant and tested else "")
    return text + f" (n={d.n})"

def primary_of(spec: dict, dataset: str) -> str | None:
    """The grid's pre-registered primary metric for `dataset` (`primary` in its [[data]] table:
    the only metric whose Δs are claims in the verdict and the design tables), or None."""
    value = (spec or {}).get("primary")
    return value.get(dataset) if isinstance(value, dict) else None


def heads_and_claims(heads: list[str], primary: str | None,
                     has_primary: bool) -> tuple[list[str], list[str]]:
    """A table's (or figure's) headline metrics and those of them whose Δs are claims. With a
    pre-registered `primary` the table holds (`has_primary`), it is shown first if the headline
    list lacks it and is the only claim (tested, Holm over the rows); the other headline Δs are
    secondary, with intervals and no test. Without one every headline Δ is a claim."""
    if primary is None or not has_primary:
        return list(heads), list(heads)
    return ([] if primary in heads else [primary]) + list(heads), [primary]


def claim_metric(spec: dict, rows: pd.DataFrame, pool: pd.DataFrame) -> str:
    """The metric a verdict tests for `rows` (one dataset's cells of a grid): the grid's
    pre-registered primary, else the metric their learning rate was tuned on, else the data
    kind's tuning default. The report's verdict table and `compare`'s verdict lines both use it."""
    tuned = next((m for m in rows.get("tune_metric", pd.Series(dtype=object)).dropna() if m), "")
    return primary_of(spec, rows["dataset"].iloc[0]) or tuned or TUNE_METRIC[kind_of(pool)]
