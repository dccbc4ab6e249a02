"""`ganbench status`: what a store holds. Counts by dataset x design x status, live leases (cells
being trained now, by whom), failed cells with their reason, the slowest cells, and what a grid
still lacks (`--grid`: a grid stored by `run`, or a preset / .toml)."""
from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections import Counter

from bench.cli.common import DEFAULT_STORE, CliError, grid_members


def register(sub) -> None:
    p = sub.add_parser("status", help="what a store holds: counts, live leases, failures, "
                                      "what a grid lacks")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--grid", help="only this grid's cells (stored by `run`, or a preset/.toml)")
    p.add_argument("--slowest", type=int, default=5, metavar="N", help="show the N slowest cells")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def collect(store, grid: str | None, slowest: int) -> dict:
    from bench.schedule.leases import Leases
    from bench.store.db import printable  # a planted owner cannot drive the terminal

    records = {r.cell_id: r for r in store.records()}
    members = grid_members(store, grid) if grid else store.members()
    if grid:
        wanted = {m["cell_id"] for m in members}
        records = {cid: r for cid, r in records.items() if cid in wanted}
    counts = Counter(r.status for r in records.values())
    table: Counter = Counter()
    in_design = set()
    for m in members:
        r = records.get(m["cell_id"])
        table[(m["dataset"], m["design"], r.status if r else "missing")] += 1
        in_design.add(m["cell_id"])
    for cid, r in records.items():
        if cid not in in_design:
            table[(r.dataset, "(no grid)", r.status)] += 1  # `train`, or dropped from a grid
    try:
        with Leases(store.db_path) as leases:
            live = [lease for lease in leases.live() if not grid or lease.cell_id in
                    {m["cell_id"] for m in members}]
    except sqlite3.Error:  # a read-only store that never had a lease table
        live = []
    failed = [{"cell_id": r.cell_id, "dataset": r.dataset, "label": r.label, "seed": r.seed,
               "reason": r.reason} for r in records.values() if r.status == "failed"]
    timed = sorted((r for r in records.values() if r.timings.get("train_s")),
                   key=lambda r: -(r.timings.get("train_s", 0) + r.timings.get("eval_s", 0)))
    slow = [{"cell_id": r.cell_id, "dataset": r.dataset, "label": r.label, "seed": r.seed,
             "train_s": r.timings.get("train_s"), "eval_s": r.timings.get("eval_s"),
             "ms_per_step": r.timings.get("ms_per_step")} for r in timed[:slowest]]
    missing = sorted({(m["dataset"], m["design"], m["info"].get("label", "?"), m["cell_id"])
                      for m in members if m["cell_id"] not in records})
    return {"counts": dict(counts), "total": sum(counts.values()),
            "by_dataset_design": [{"dataset": d, "design": g, "status": s, "cells": n}
                                  for (d, g, s), n in sorted(table.items())],
            "live_leases": [{"cell_id": printable(lease.cell_id), "owner": printable(lease.owner),
                             "heartbeat_age_s": round(time.time() - lease.heartbeat, 1),
                             "attempts": lease.attempts} for lease in live],
            "failed": failed, "slowest": slow,
            "missing": [{"dataset": d, "design": g, "label": label, "cell_id": c}
                        for d, g, label, c in missing]}


def run(args: argparse.Namespace) -> int:
    from bench.store import Store

    if args.slowest < 0:
        raise CliError(f"--slowest must be >= 0, got {args.slowest}")
    with Store(args.store, create=False) as store:
        info = collect(store, args.grid, args.slowest)
    if args.json:
        print(json.dumps({"store": str(args.store), "grid": args.grid, **info}))
        return 0
    print(f"store {args.store}" + (f", grid {args.grid}" if args.grid else "") +
          f": {info['total']} records")
    print(f"\n{'dataset':<16} {'design':<22} {'status':<15} cells")
    for row in info["by_dataset_design"]:
        print(f"{row['dataset']:<16} {row['design']:<22} {row['status']:<15} {row['cells']}")
    print(f"{'total':<16} {'':<22} {'':<15} {info['total']}  ("
          + ", ".join(f"{n} {s}" for s, n in sorted(info["counts"].items())) + ")")
    if info["live_leases"]:
        print("\nbeing trained now (live leases):")
        for lease in info["live_leases"]:
            print(f"  {lease['cell_id']}  {lease['owner']}  heartbeat {lease['heartbeat_age_s']}s "
                  f"ago, attempt {lease['attempts']}")
    if info["failed"]:
        print("\nfailed (rerun with `ganbench run --retry failed`):")
        for f in info["failed"]:
            print(f"  {f['cell_id']}  {f['dataset']} {f['label']} seed {f['seed']}: {f['reason']}")
    if info["slowest"]:
        print("\nslowest cells:")
        for s in info["slowest"]:
            # a failed or unscored cell has no eval time (it printed "eval Nones")
            times = [f"train {s['train_s']}s",
                     "not scored" if s["eval_s"] is None else f"eval {s['eval_s']}s"]
            if s["ms_per_step"] is not None:
                times.append(f"{s['ms_per_step']} ms/step")
            print(f"  {s['cell_id']}  {s['dataset']} {s['label']} seed {s['seed']}: "
                  + ", ".join(times))
    if args.grid:
        lacking = info["missing"]
        print(f"\ngrid {args.grid} lacks {len(lacking)} cell(s)"
              + (":" if lacking else " (complete)"))
        for m in lacking[:20]:
            print(f"  {m['cell_id']}  {m['dataset']} {m['design']} {m['label']}")
        if len(lacking) > 20:
            print(f"  ... and {len(lacking) - 20} more")
    return 0
