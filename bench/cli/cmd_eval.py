"""`ganbench eval`: re-score stored cells from their final checkpoints."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.common import (DEFAULT_STORE, LOG, add_device_option, add_eval_options,
                              eval_spec_from)


def register(sub) -> None:
    p = sub.add_parser("eval", help="(re)score stored cells from their final checkpoints")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--cell", help="cell id (or unique prefix); default: every finished cell")
    add_device_option(p)
    p.add_argument("--json", action="store_true", help="print records as JSON, one per line")
    add_eval_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.schedule.rescore import rescore

    def say_skipped(records, why: str) -> None:
        LOG.info(f"skipped {len(records)} cell(s): {why}")

    spec = eval_spec_from(args)
    for record in rescore(Path(args.store), args.cell, spec, device=args.device,
                          on_skip=say_skipped):
        print(record.to_json() if args.json else record.summary_line())
    return 0
