"""`make run`'s wall time split into training, scoring and the report (issue 19).

Two modes:

- `--fresh`: runs exactly what `make run` runs, timed: `ganbench run --grid GRID --store STORE`
  on a store that must not exist yet, then `ganbench report --store STORE --grid GRID --out OUT`,
  and prints the wall time of each and of both, with the training / scoring split of the run
  (the cells' own seconds from their records). This is the measurement the README quotes
  (`make run-timed` calls it with the Makefile's GRID, STORE and results/GRID):

      python benchmarks/make_run_time.py --fresh --store runs/default --out results/cpu-default

- without `--fresh`: from a store a run already wrote, the cells' own seconds and the wall time
  from the first to the last record, then the report timed into a temporary folder.

Compare with the estimate `ganbench run --grid GRID --dry-run --store EMPTY` gives before
anything trains. Figures depend on the machine and on what else runs on it: measure on an idle
machine (`uptime` before and after is printed).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cells_split(store: str, grid: str) -> dict:
    """The cells' own seconds (train, curve points, final scoring) and their record span."""
    from bench.store.results import load_records

    df = load_records(store, grid=grid).drop_duplicates("cell_id")
    sums = {k: float(df[k].fillna(0).sum()) if k in df else 0.0
            for k in ("train_s", "eval_s", "curve_s")}
    first = float(df["created_at"].min()) if len(df) else float("nan")
    last = float(df["created_at"].max()) if len(df) else float("nan")
    return {"cells": len(df), **sums, "first": first, "last": last}


def print_split(s: dict, workers: int) -> None:
    busy = s["train_s"] + s["eval_s"] + s["curve_s"]
    scoring = s["eval_s"] + s["curve_s"]
    print(f"  cells' own seconds: training {s['train_s']:.0f}, scoring {scoring:.0f} "
          f"(final {s['eval_s']:.0f} + eval-curve points {s['curve_s']:.0f}); sum {busy:.0f} "
          f"= {busy / workers / 60:.1f} min on {workers} workers for a perfect pool")
    span = s["last"] - s["first"]
    print(f"  first to last record: {span / 60:.1f} min (pool: {busy / max(span, 1e-9):.2f} "
          f"cell-seconds per wall second)")


def ganbench() -> list[str]:
    exe = Path(sys.executable).with_name("ganbench")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "bench.cli"]


def uptime() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def fresh(args) -> int:
    store = Path(args.store)
    if store.exists():
        print(f"{store} exists: --fresh times a run from nothing (remove it, or pick another "
              f"--store)", file=sys.stderr)
        return 2
    run = ganbench() + ["run", "--grid", args.grid, "--store", str(store)] + (
        ["--workers", str(args.workers)] if args.workers_given else [])
    report = ganbench() + ["report", "--store", str(store), "--grid", args.grid, "--out",
                           args.out] + args.report_args
    print(f"load average before: {uptime()}; {os.cpu_count()} CPUs", flush=True)
    t0 = time.time()
    status = subprocess.call(run)
    t1 = time.time()
    if status not in (0, 1):  # as `make run`: no report after bad input or an interrupt
        print(f"run exited {status}; no report", file=sys.stderr)
        return status
    rstatus = subprocess.call(report)
    t2 = time.time()
    print(f"\nload average after: {uptime()}")
    print(f"make run, grid {args.grid}: {(t2 - t0) / 60:.1f} min wall in all ({t2 - t0:.0f} s)")
    print(f"- ganbench run: {t1 - t0:.0f} s")
    s = cells_split(str(store), args.grid)
    print(f"  start-up to first record {s['first'] - t0:.0f} s; last record to exit "
          f"{t1 - s['last']:.0f} s")
    print_split(s, args.workers)
    print(f"- ganbench report: {t2 - t1:.0f} s (exit {rstatus})")
    return status or rstatus


def existing(args) -> int:
    from bench.report.build import write_report

    s = cells_split(args.store, args.grid)
    print(f"{s['cells']} cells of grid {args.grid} in {args.store}")
    print_split(s, args.workers)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_report(args.store, out, grid=args.grid)
    print(f"report: {time.perf_counter() - started:.1f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Other arguments (e.g. --image-references) are passed to "
                                        "`ganbench report` with --fresh.")
    ap.add_argument("--store", required=True)
    ap.add_argument("--grid", default="cpu-default")
    ap.add_argument("--workers", type=int, default=None,
                    help="for the per-worker split (and passed to run with --fresh); default: "
                         "the CPU count, as run's")
    ap.add_argument("--fresh", action="store_true",
                    help="train and report from nothing, timed (the store must not exist)")
    ap.add_argument("--out", default=None, help="with --fresh: the report folder "
                                                "(default results/GRID, as make run)")
    args, args.report_args = ap.parse_known_args()  # the rest go to `ganbench report`, as make run's
    if args.report_args and not args.fresh:
        ap.error(f"unrecognized arguments: {' '.join(args.report_args)} (report arguments need --fresh)")
    args.workers_given = args.workers is not None
    args.workers = args.workers or os.cpu_count() or 1
    args.out = args.out or f"results/{args.grid}"
    return fresh(args) if args.fresh else existing(args)


if __name__ == "__main__":
    sys.exit(main())
