"""`ganbench run`: train and score every cell of a grid (resumable)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.common import (DEFAULT_STORE, add_curve_option, add_data_options, add_eval_options,
                              eval_spec_from, load_data)


def register(sub) -> None:
    p = sub.add_parser("run", help="train and score every cell of a grid (resumable)")
    p.add_argument("--grid", default="cpu-default", help="preset name (bench/grids/) or a .toml path")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--device", default="auto")
    add_eval_options(p)
    add_data_options(p)
    add_curve_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.executor import run_cells
    from bench.grid import load_grid

    grid = load_grid(args.grid)
    cells = list(grid.cells)
    for cell in {(c.data.name, c.data.resolution): c for c in cells}.values():
        load_data(args, cell)
    spec = eval_spec_from(args)
    workers = args.workers
    print(f"grid '{grid.name}': {len(cells)} cells -> {args.store} ({workers} worker(s))",
          file=sys.stderr)
    for record in run_cells(cells, Path(args.store), workers=workers, eval_spec=spec,
                            device=args.device, progress=True, curve_every=args.curve_every):
        print(record.summary_line(), flush=True)
    return 0
