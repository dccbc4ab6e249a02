"""Overhead of Ray against the local pool: the same grid with `--executor ray` (a local Ray with
N CPUs) and with the local pool of N workers, each into a fresh store. Target: <= 15% for cells
of about 10 s. Prints the wall times and the ratio; Ray's start-up is included.

    python benchmarks/ray_overhead.py [--workers 2] [--steps 2500] [--cells 8]

Needs Ray (pip install 'ganbench[ray]'). Measure on an idle machine.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from benchmarks.workers import ring8_cells, timed  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=2500)
    ap.add_argument("--cells", type=int, default=8)
    args = ap.parse_args()
    import ray

    cells = ring8_cells(args.cells, args.steps)
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
