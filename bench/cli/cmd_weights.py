"""`ganbench weights`: prepare metric weights offline."""
from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.common import CliError


def register(sub) -> None:
    p = sub.add_parser("weights", help="prepare metric weights offline")
    p.add_argument("which", choices=["inception"])
    p.add_argument("--out", help="output file (default: <cache>/weights/, where the "
                   "inception extractor looks; cache = $GANBENCH_CACHE or ~/.cache/ganbench)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.metrics.inception import default_converted_weights_path, install_inception_weights

    out = Path(args.out).expanduser() if args.out else default_converted_weights_path()
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    path, sha = install_inception_weights(out_path=out)
    print(f"wrote {path} (sha256 {sha}); it is used by --extractor inception-v3-compat "
          f"(or pass --inception-weights {path})")
    return 0
