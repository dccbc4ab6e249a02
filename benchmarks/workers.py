"""Speed-up of the worker pool: the same small grid with 1 and with N workers (default 2), each
into a fresh store, printing the wall times and the ratio. Target on a 2-core machine: >= 1.8x.

    python benchmarks/workers.py [--workers 2] [--steps 1500] [--cells 8]

Figures depend on the machine and on what else runs on it; measure on an idle machine.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.schedule.executor import run_cells
from bench.schedule.grid import load_grid

GRID = """
description = "benchmark: ring8 cells of equal cost"
design = "baseline"
seeds = {seeds}

[[data]]
name = "ring8"
steps = {steps}
batch_size = 256
lr = 1e-3
"""


def ring8_cells(n_cells: int, steps: int) -> tuple:
    """`n_cells` ring8 cells of equal cost (one per seed)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.toml"
        path.write_text(GRID.format(seeds=list(range(n_cells)), steps=steps))
        return load_grid(str(path)).cells


def timed(cells, **run_kw) -> float:
    """Wall seconds to run `cells` into a fresh store (every cell must end done)."""
    with tempfile.TemporaryDirectory() as store:
        started = time.perf_counter()
        records = list(run_cells(cells, Path(store), progress=False, curve_every=0, **run_kw))
        wall = time.perf_counter() - started
    assert all(r.status == "done" for r in records), [r.reason for r in records]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--cells", type=int, default=8)
    args = ap.parse_args()
    cells = ring8_cells(args.cells, args.steps)
    one = timed(cells, workers=1)
    many = timed(cells, workers=args.workers)
    print(f"{args.cells} ring8 cells x {args.steps} steps: 1 worker {one:.1f} s, "
          f"{args.workers} workers {many:.1f} s, speed-up {one / many:.2f}x "
          f"(includes starting the worker processes)")


if __name__ == "__main__":
    main()
