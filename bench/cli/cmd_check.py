"""`ganbench check`: is a store sound (SQLite integrity, records, file digests, temporaries,
leases); `--repair` fixes what it safely can (`bench/schedule/store_check/` says what and
how).

Exit codes: 0 when the store is sound (or everything found was repaired); 1 when problems are
found (or, with --repair, some could not be repaired: each is one line saying why); 2 for bad
input (no store there)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.common import DEFAULT_STORE


def register(sub) -> None:
    p = sub.add_parser("check", help="check a store (database, records, file digests, "
                                     "temporaries, leases); --repair fixes what it safely can",
                       description="Check a store: SQLite integrity_check, every record parses "
                                   "and its id is its config's hash, every done cell has its "
                                   "final checkpoint and samples with the recorded sha256, no "
                                   "stray temporaries, no dead leases. Exit 0 sound, 1 problems "
                                   "found, 2 bad input.")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--repair", action="store_true",
                   help="salvage every readable record of a damaged database into a fresh one "
                        "(the old file is kept), set invalid records aside, remove "
                        "temporaries, release dead leases, retire cells whose final checkpoint "
                        "is gone or corrupt for retraining")
    p.add_argument("--json", action="store_true", help="print the findings as one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.store import StoreError
    from bench.schedule.store_check import as_json, check_store, summary

    root = Path(args.store)
    if not (root / "results.sqlite").is_file():
        raise StoreError(f"no store at {root} (expected {root / 'results.sqlite'})")
    rep = check_store(root, repair=args.repair)
    if args.json:
        print(as_json(rep))
    else:
        for line in rep.repaired:
            print(f"repaired: {line}")
        for line in rep.problems:
            print(f"problem: {line}")
        print(summary(rep, root, args.repair), file=sys.stderr if rep.problems else sys.stdout)
    return 1 if rep.problems else 0
