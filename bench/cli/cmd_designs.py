"""`ganbench designs`: list the grid designs (bench/designs/)."""
from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser("designs", help="list grid designs (the `design` key of a grid file)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.designs import list_designs

    designs = list_designs()
    if args.json:
        print(json.dumps(designs, indent=2))
        return 0
    width = max(len(n) for n in designs)
    for name, summary in designs.items():
        print(f"{name:<{width}}  {summary}")
    return 0
