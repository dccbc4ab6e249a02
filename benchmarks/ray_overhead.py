"""Overhead of Ray against the local pool: the same grid with `--executor ray` (a local Ray with
N CPUs) and with the local pool of N workers, each into a fresh store. Target: <= 15% for cells
of about 10 s. Prints the wall times and the ratio; Ray's start-up is included.

    python benchmarks/ray_overhead.py [--workers 2] [--steps 2500] [--cells 8]

Needs Ray (pip install 'ganbench[ray]'). Measure on an idle machine.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.executor import run_cells
from bench.grid import load_grid

GRID = """
description = "ray overhead benchmark: ring8 cells of equal cost"
design = "baseline"
seeds = {seeds}

[[data]]
name = "ring8"
steps = {steps}
batch_size = 256
lr = 1e-3
"""


def timed(cells, **kw) -> float:
    with tempfile.TemporaryDirectory() as store:
        started = time.perf_counter()
        records = list(run_cells(cells, Path(store), progress=False, curve_every=0, **kw))
        wall = time.perf_counter() - started
    assert all(r.status == "done" for r in records), [r.reason for r in records]
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--cells", type=int, default=8)
    args = ap.parse_args()
    import ray

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ray.toml"
        path.write_text(GRID.format(seeds=list(range(args.cells)), steps=args.steps))
        cells = load_grid(str(path)).cells
        pool = timed(cells, workers=args.workers)
        ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
        try:
            on_ray = timed(cells, executor="ray")
        finally:
            ray.shutdown()
    print(f"{args.cells} ring8 cells x {args.steps} steps, {args.workers} CPUs: local pool "
          f"{pool:.1f} s, Ray {on_ray:.1f} s, overhead {100 * (on_ray / pool - 1):+.0f}%")


if __name__ == "__main__":
    main()
