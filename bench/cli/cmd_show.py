"""`ganbench show`: print stored records."""
from __future__ import annotations

import argparse
import sys

from bench.cli.common import DEFAULT_STORE


def register(sub) -> None:
    p = sub.add_parser("show", help="print stored records")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--cell", help="cell id (or unique prefix)")
    p.add_argument("--grid", help="only this grid's stored cells, in grid order (a grid stored by "
                                  "`run`, or a preset/.toml); default: every record, oldest first")
    p.add_argument("--json", action="store_true", help="print records as JSON, one per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.store import Store

    with Store(args.store, create=False) as store:
        ids = [store.resolve_id(args.cell)] if args.cell is not None else None
        records = list(store.records(ids=ids))
        if args.grid:
            from bench.cli.common import grid_members

            order = {}
            for m in grid_members(store, args.grid):
                order.setdefault(m["cell_id"], len(order))
            records = sorted((r for r in records if r.cell_id in order),
                             key=lambda r: order[r.cell_id])
    if args.json:
        for r in records:
            print(r.to_json())
        return 0
    from bench.schedule.run_output import RunTable

    table = RunTable([], sys.stdout, records)  # the same aligned columns as `ganbench run`
    table.header(f"{len(records)} record(s) in {args.store}")
    for r in records:
        print(table.line(r))
    return 0
