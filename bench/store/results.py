"""The results API: stored records as one pandas DataFrame. Imports no torch.

    from ganbench import load_records                        # = bench.store.results.load_records
    df = load_records("runs/default")                        # current trick versions only
    df[df.dataset == "ring8"].groupby("label")["modes"].agg(["mean", "std", "count"])

One row per cell (record), however many grids or designs asked for it: `grids` and `designs`
say which (tuples, in store order; a record no grid asked for, e.g. from `ganbench train`, has
`grids == ()` and `designs == ("add-one",)`). `load_records(store, memberships=True)` gives one
row per (record, grid membership) instead, with the membership's own columns (grid, design,
member_order, factors, seed_role, tuned_on, tune_metric, tune_scores): the table the reports
read, where the baseline appears once per design that compares against it. Columns:

- ids: cell_id, variant_id, dataset, resolution, data (dataset, plus "@<N>px" when a resolution
  was asked for: what tables are grouped by), label, row_label (label plus the swept values),
  tricks (tuple of names), trick_params {trick: {param: value}}, trick_versions {trick:
  version}, one `<trick>.<param>` column per trick param, seed, steps, batch_size, lr (the
  cell's base LR, G's), lr_d, g_loss, log_every, checkpoint_every, role (baseline | variant |
  all), sweep, tune, tune_lr, step_cost;
- per membership (`memberships=True` only): grid, design, member_order (position in the grid's
  list; -1 without one), factors, seed_role ("tune" / "eval" under held-out tuning, else ""),
  tuned_on (the tuning seeds of an eval cell's setting), tune_metric, tune_scores (each
  candidate setting's [mean, seeds] on the tuning seeds);
- setup (the config without tricks, seed and bookkeeping, flattened: `bench.core.setups`) and
  setup_id (its short hash): a variant's Δ is taken against the baseline of the same setup_id;
- outcome: status, reason, step, run_flags (tuple of flag names; called `flags` before, a name
  pandas' `DataFrame.flags` shadows), flag_details (list of dicts), error (traceback of a
  failed cell);
- every metric (one column each; their names are in `df.attrs["metrics"]`);
- train_s, eval_s, curve_s, ms_per_step, g_params, d_params, g_lr, d_lr (effective, after the
  tricks' optimizer hook; the config's LRs when a record predates `optim`), g_beta1, g_beta2,
  d_beta1, d_beta2, d_steps;
- protocol_hash (sha256 of the metric protocol, without re-scoring history), device, threads,
  created_at, current (installed trick versions and the prevailing protocol), curves (the
  record's curves dict), cell_dir (its artifact folder, where the sample file lives).

`df.attrs` holds only what is small (the metric names; with `memberships=True` also the grid
specs, {grid: spec}): pandas deep-copies `attrs` on every operation, so what the grids asked for
(`Catalog`: grid specs, members, stored cell ids) comes from `load_table`, which the reports
call.

Which records are current: a trick's installed version is read from its source without
importing it (`bench.core.trick_versions`); a trick whose source cannot be read (an unusual plug-in)
counts its newest stored version as current. The prevailing protocol of a dataset (at one
resolution) is the protocol hash of most of its scored records (ties: the newest).
`current_versions=True` (the default) returns only current rows; pass False for all, with the
`current` column saying which."""
from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd

from bench.core.config import TrainConfig
from bench.core.grid_files import resolve_grid_path
from bench.core.metric_directions import METRIC_DIRECTIONS
from bench.core.record import Record
from bench.core.setups import setup_id, setup_of
from bench.store import Store

# Headline metrics per data kind: the ones tables give a paired-delta column and figures plot.
HEADLINE = {"2d": ("modes", "high_quality", "reverse_kl", "modes_strict"),
            "image": ("fid", "kid_mean", "precision", "recall", "modes", "stacked_modes")}
# The metric a tuned view chooses each variant's LR on (overridable in the report).
TUNE_METRIC = {"2d": "reverse_kl", "image": "fid"}


def direction(metric: str) -> str | None:
    """'up', 'down' or None (e.g. a plug-in metric the table does not know)."""
    return METRIC_DIRECTIONS.get(metric)


def protocol_hash(protocol: Mapping[str, Any]) -> str:
    clean = {k: v for k, v in protocol.items() if k != "previous"}
    if not clean:
        return ""
    return hashlib.sha256(json.dumps(clean, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _inferred_role(label: str) -> str:
    return "baseline" if label == "baseline" else "variant"


def row_label_of(label: str, sweep: Mapping[str, Any], tune: Mapping[str, Any]) -> str:
    """'label [k=v, ...]' with the swept and tuned values (the label alone without any)."""
    extra = {**sweep, **{k: v for k, v in tune.items() if k not in sweep}}
    if not extra:
        return label
    values = [f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in extra.items()]
    return f"{label} [{', '.join(values)}]"


def _record_row(r: Record, root: Path) -> dict[str, Any]:
    cfg = r.config
    train = cfg.get("train", {})
    g_cfg, d_cfg = train.get("g_optim", {}), train.get("d_optim", {})
    opt_g, opt_d = (r.optim or {}).get("G") or g_cfg, (r.optim or {}).get("D") or d_cfg
    tricks = cfg.get("tricks", [])
    setup = setup_of(cfg)
    row: dict[str, Any] = {
        "cell_id": r.cell_id, "variant_id": r.variant_id,
        "dataset": cfg["data"]["name"], "resolution": cfg["data"].get("resolution"),
        # the data a table is about: the name, plus the resolution when one was asked for
        "data": cfg["data"]["name"] + (f"@{cfg['data']['resolution']}px"
                                       if cfg["data"].get("resolution") else ""),
        "label": r.label, "tricks": tuple(t["name"] for t in tricks),
        "trick_params": {t["name"]: dict(t.get("params", {})) for t in tricks},
        "trick_versions": {t["name"]: int(t.get("version", 1)) for t in tricks},
        "seed": int(cfg.get("seed", 0)), "steps": train.get("steps"),
        "batch_size": train.get("batch_size"), "lr": g_cfg.get("lr"),
        "lr_d": d_cfg.get("lr", g_cfg.get("lr")),  # the configured D lr (g_lr / d_lr grids)
        "g_loss": train.get("g_loss", TrainConfig.g_loss),  # G's baseline loss (trickapi/losses.py)
        "log_every": train.get("log_every"), "checkpoint_every": train.get("checkpoint_every"),
        "setup": setup, "setup_id": setup_id(setup),
        "status": r.status, "reason": r.reason, "step": r.step,
        # each flag once per cell (oscillation may fire on both loss curves): tables count cells
        "run_flags": tuple(dict.fromkeys(f.get("flag", "") for f in r.flags)),
        "flag_details": list(r.flags),
        "error": r.error,
        "g_params": (r.nets or {}).get("g_params"), "d_params": (r.nets or {}).get("d_params"),
        "g_lr": opt_g.get("lr"), "d_lr": opt_d.get("lr"),
        "g_beta1": opt_g.get("beta1"), "g_beta2": opt_g.get("beta2"),
        "d_beta1": opt_d.get("beta1"), "d_beta2": opt_d.get("beta2"),
        "d_steps": (r.optim or {}).get("d_steps"),
        "protocol_hash": protocol_hash(r.protocol), "protocol": r.protocol,
        "device": r.device or (r.runtime or {}).get("device", ""),
        "threads": (r.runtime or {}).get("threads"), "created_at": r.created_at,
        "versions": r.versions, "curves": r.curves,
        "cell_dir": str(root / "cells" / r.cell_id),
    }
    for key in ("train_s", "eval_s", "curve_s", "ms_per_step"):
        row[key] = r.timings.get(key)
    for t in tricks:
        for k, v in t.get("params", {}).items():
            row[f"{t['name']}.{k}"] = v
    return row


def _membership(row: dict[str, Any], member: Mapping[str, Any] | None) -> dict[str, Any]:
    info = (member or {}).get("info", {}) or {}
    sweep, tune = dict(info.get("sweep", {}) or {}), dict(info.get("tune", {}) or {})
    return {**row,
            "grid": (member or {}).get("grid", ""),
            "design": (member or {}).get("design", "add-one"),
            "member_order": (member or {}).get("order", -1),
            "role": info.get("role") or _inferred_role(row["label"]),
            "factors": dict(info.get("factors", {}) or {}),
            "sweep": sweep, "tune": tune, "tune_lr": tune.get("lr"),
            # held-out tuning (bench/schedule/tuning.py): "tune" (a tuning seed), "eval" (an evaluation
            # seed: its setting was chosen on `tuned_on`), "" (no held-out tuning)
            "seed_role": info.get("seed_role", ""), "tuned_on": tuple(info.get("tuned_on", ())),
            # network updates per step relative to the baseline's (Trick.step_cost)
            "step_cost": info.get("step_cost", 1.0 if not row["tricks"] else None),
            "tune_metric": info.get("tune_metric", ""),
            "tune_scores": dict(info.get("tune_scores", {}) or {}),
            "row_label": row_label_of(row["label"], sweep, tune)}


def _current_flags(df: pd.DataFrame, installed: Mapping[str, int]) -> pd.Series:
    newest: dict[str, int] = {}
    for versions in df["trick_versions"]:
        for name, v in versions.items():
            newest[name] = max(newest.get(name, 0), v)
    want = {**newest, **installed}
    ok_versions = df["trick_versions"].map(
        lambda vs: all(want.get(n, v) == v for n, v in vs.items()))
    # the prevailing protocol per dataset among scored records (most common; ties: newest)
    scored = df[df["protocol_hash"] != ""]
    prevailing: dict[str, str] = {}
    for data, part in scored.groupby("data"):
        counts = Counter(part["protocol_hash"])
        newest_at = part.groupby("protocol_hash")["created_at"].max()
        prevailing[data] = max(counts, key=lambda h: (counts[h], newest_at[h]))
    ok_protocol = [(h == "" or prevailing.get(d, h) == h)
                   for d, h in zip(df["data"], df["protocol_hash"])]
    return ok_versions & pd.Series(ok_protocol, index=df.index)


def stored_grid_name(grid: str, stored: Mapping[str, Any]) -> str:
    """The stored grid that `--grid` names: a stored name as given, else a grid file's stem,
    the name `run --grid FILE` stores it under. A name that is neither stays as it is (the
    caller says which grids the store has)."""
    if grid in stored:
        return grid
    path = Path(grid)
    if path.suffix == ".toml" or path.is_file():
        return resolve_grid_path(grid).stem  # as `run` resolves it ("grid file not found")
    return grid  # a preset's name is its file's stem


# columns that belong to one grid membership, not to the cell: left out of the per-cell table
MEMBERSHIP_COLUMNS = ("grid", "design", "member_order", "factors", "seed_role", "tuned_on",
                      "tune_metric", "tune_scores")


@dataclass
class Catalog:
    """What a store's grids asked for, beside the table (not in `df.attrs`, which pandas
    deep-copies on every operation): metric names, {grid: spec}, the members of the grids read
    (stored or not), and every stored cell id, current or not (a grid member with a record of
    another protocol or trick version is not "missing": bench.report.build.shortfalls)."""
    metrics: list[str] = field(default_factory=list)
    grids: dict[str, Any] = field(default_factory=dict)
    members: list[dict] = field(default_factory=list)
    stored_ids: list[str] = field(default_factory=list)


def load_records(store: str | os.PathLike | Store, *, current_versions: bool = True,
                 grid: str | Sequence[str] | None = None,
                 trick_versions: Mapping[str, int] | None = None,
                 memberships: bool = False) -> pd.DataFrame:
    """All stored records as a DataFrame, one row per cell (see the module docstring for the
    columns); `memberships=True`: one row per (cell, grid membership), as the reports read it.

    grid: only cells that grid (or these grids) asked for: a stored grid's name, or the grid
    file it was run from (`stored_grid_name`). trick_versions: {trick: version} to
    treat as installed (default: read from the installed tricks' source)."""
    df, _ = load_table(store, current_versions=current_versions, grid=grid,
                       trick_versions=trick_versions)
    return df if memberships else per_cell(df)


def per_cell(df: pd.DataFrame) -> pd.DataFrame:
    """One row per cell of a per-membership table: `grids` and `designs` (tuples, in membership
    order) replace the membership columns; the other columns are the cell's own."""
    if df.empty:
        out = df.drop(columns=[c for c in MEMBERSHIP_COLUMNS if c in df.columns])
        out["grids"], out["designs"] = pd.Series(dtype=object), pd.Series(dtype=object)
        out.attrs = dict(df.attrs)
        return out
    grouped = df.groupby("cell_id", sort=False)
    grids = grouped["grid"].agg(lambda g: tuple(dict.fromkeys(x for x in g if x)))
    designs = grouped["design"].agg(lambda d: tuple(dict.fromkeys(d)))
    out = df.drop_duplicates("cell_id").drop(columns=list(MEMBERSHIP_COLUMNS))
    out = out.reset_index(drop=True)
    out["grids"] = list(grids.loc[out["cell_id"]])
    out["designs"] = list(designs.loc[out["cell_id"]])
    out.attrs = {"metrics": list(df.attrs.get("metrics", []))}
    return out


def load_table(store: str | os.PathLike | Store, *, current_versions: bool = True,
               grid: str | Sequence[str] | None = None,
               trick_versions: Mapping[str, int] | None = None
               ) -> tuple[pd.DataFrame, Catalog]:
    """The per-membership table (`load_records(..., memberships=True)`) and the `Catalog` of
    what the grids asked for: what `ganbench report` reads."""
    wanted = [grid] if isinstance(grid, str) else list(grid or [])
    own = not isinstance(store, Store)
    st = Store(store, create=False) if own else store
    try:
        records = list(st.records())
        grids = st.grids()
        given = {stored_grid_name(g, grids): g for g in wanted}  # `--grid my.toml` works too
        wanted = list(given)  # each grid once, so no cell is counted twice
        unknown = [g for g in wanted if g not in grids]
        members = [m for g in wanted if g not in unknown for m in st.members(g)] if wanted \
            else st.members()
    finally:
        if own:
            st.close()
    if unknown:
        from bench.store import StoreError

        import difflib

        known = ", ".join(grids) or "none"
        source = f" (from {given[unknown[0]]})" if given[unknown[0]] != unknown[0] else ""
        close = difflib.get_close_matches(unknown[0], list(grids), n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise StoreError(f"no grid '{unknown[0]}'{source} in store {st.root} ({hint}grids "
                         f"there: {known})")
    by_cell: dict[str, list[dict]] = {}
    for order, m in enumerate(members):  # members are stored in grid order
        by_cell.setdefault(m["cell_id"], []).append({**m, "order": order})
    rows: list[dict[str, Any]] = []
    metric_names: list[str] = []
    for r in records:
        base = _record_row(r, st.root)
        for name, value in r.metrics.items():
            base[name] = value
            if name not in metric_names:
                metric_names.append(name)
        cell_members: Iterable[Mapping | None] = by_cell.get(r.cell_id) or ([] if wanted else [None])
        rows.extend(_membership(base, m) for m in cell_members)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["cell_id", "variant_id", "grid", "design", "dataset", "data",
                                   "label", "row_label", "seed", "status", "role", "run_flags",
                                   "current", *MEMBERSHIP_COLUMNS[2:]])
    else:
        from bench.core.trick_versions import installed_trick_versions

        installed = installed_trick_versions() if trick_versions is None else trick_versions
        df["current"] = _current_flags(df, installed)
        if current_versions:
            df = df[df["current"]].reset_index(drop=True)
    known = [m for m in METRIC_DIRECTIONS if m in metric_names]
    metrics = known + [m for m in metric_names if m not in known]
    # small, cheap for pandas to copy on every operation: the metric names and the grid specs
    # (the reports' grid options); the members and stored ids stay in the Catalog
    df.attrs["metrics"] = metrics
    df.attrs["grids"] = grids
    return df, Catalog(metrics=metrics, grids=grids, members=members,
                       stored_ids=sorted({r.cell_id for r in records}))


def kind_of(df: pd.DataFrame) -> str:
    """'2d' or 'image' for the rows of one dataset (from the stored protocol, else the metrics)."""
    for protocol in df.get("protocol", []):
        if isinstance(protocol, Mapping) and protocol.get("kind"):
            return protocol["kind"]
    return "2d" if "high_quality" in df.columns and df["high_quality"].notna().any() else "image"


def headline_metrics(df: pd.DataFrame) -> list[str]:
    """The headline metrics these rows have scores for."""
    return [m for m in HEADLINE[kind_of(df)] if m in df.columns and df[m].notna().any()]


__all__ = ["load_records", "load_table", "per_cell", "Catalog", "MEMBERSHIP_COLUMNS",
           "stored_grid_name", "headline_metrics", "kind_of", "direction",
           "protocol_hash", "row_label_of", "HEADLINE", "TUNE_METRIC"]
