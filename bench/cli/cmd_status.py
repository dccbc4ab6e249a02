"""`ganbench status`: what a store holds."""
from __future__ import annotations

import argparse
import json

from bench.cli.common import DEFAULT_STORE


def register(sub) -> None:
    p = sub.add_parser("status", help="count stored cells by status")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.store import Store

    with Store(args.store, create=False) as store:
        counts = store.counts()
    if args.json:
        print(json.dumps({"store": str(args.store), "counts": counts,
                          "total": sum(counts.values())}))
    else:
        for status, n in sorted(counts.items()):
            print(f"{status:<15} {n}")
        print(f"{'total':<15} {sum(counts.values())}")
    return 0
