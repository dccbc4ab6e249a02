"""`make run`'s wall time split into training, scoring and the report, from a store a run wrote:
the cells' own train / eval / curve seconds (summed, and per worker), the wall time from the
first to the last record, and the time `ganbench report` takes on it (timed here). Compare with
the estimate `ganbench run --grid GRID --dry-run --store EMPTY` gives before anything trains.

    python benchmarks/make_run_time.py --store runs/default [--grid cpu-default] [--workers 2]

Figures depend on the machine and on what else runs on it; measure on an idle machine.
"""
from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--grid", default="cpu-default")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    from bench.report.build import write_report
    from bench.store.results import load_records

    df = load_records(args.store, grid=args.grid).drop_duplicates("cell_id")
    sums = {k: float(df[k].fillna(0).sum()) for k in ("train_s", "eval_s", "curve_s")}
    span = float(df["created_at"].max() - df["created_at"].min()) if len(df) else 0.0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        write_report(args.store, out, grid=args.grid)
    report_s = time.perf_counter() - started
    busy = sum(sums.values())
    print(f"{len(df)} cells of grid {args.grid} in {args.store}")
    print(f"cells' own seconds: train {sums['train_s']:.0f}, curves {sums['curve_s']:.0f}, "
          f"final scoring {sums['eval_s']:.0f} (sum {busy:.0f}; / {args.workers} workers = "
          f"{busy / args.workers / 60:.1f} min)")
    print(f"first to last record: {span / 60:.1f} min of wall time (pool efficiency "
          f"{busy / max(span, 1e-9):.2f} cells' seconds per wall second)")
    print(f"report: {report_s:.1f} s")


if __name__ == "__main__":
    main()
