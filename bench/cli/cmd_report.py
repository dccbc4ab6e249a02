"""`ganbench report`: tables, figures and index.md from a store. Imports no torch."""
from __future__ import annotations

import argparse
import shlex
import sys

from bench.cli.common import DEFAULT_STORE


def register(sub) -> None:
    p = sub.add_parser("report", help="tables (Markdown, LaTeX, CSV), figures and index.md from a store")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--out", help="output folder (default: <store>/report)")
    p.add_argument("--grid", action="append", metavar="GRID",
                   help="only the cells this grid asked for (a grid stored by `run`, or the "
                        "preset/.toml it was run from); repeat for several grids (a store "
                        "can also hold cells that no grid asks for any more, e.g. after a grid "
                        "file changed)")
    p.add_argument("--bootstrap", action="store_true",
                   help="BCa bootstrap CIs (scipy.stats.bootstrap) where a Δ has >= 10 paired "
                        "seeds; paired t below that (p, * and Holm always from the exact paired "
                        "sign-flip test)")
    p.add_argument("--no-samples", action="store_true",
                   help="skip the sample sheets (one per variant and dataset)")
    p.add_argument("--no-pdf", action="store_true",
                   help="PNGs only: leave out the PDF written beside every figure's PNG "
                        "(vector figures for a paper; the sample sheets' PDFs hold their pixels)")
    # its own dest: the CLI's shared `workers` default is the training pool's (imports torch)
    p.add_argument("--workers", type=int, metavar="N", dest="figure_workers",
                   help="processes that draw and save the figures (default: the CPUs this "
                        "process may use, at most 4; 1 = all in this process)")
    p.add_argument("--image-references", action="store_true",
                   help="score the image datasets' reference rows (shuffled, blurred and real "
                        "images) where they are not cached yet: minutes, may train the suite's "
                        "classifier (2-D reference rows are always scored on a miss)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.store import StoreError

    # Errors are printed here: the CLI's shared error list imports torch-backed modules.
    try:
        return _report(args)
    except StoreError as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --out is not writable
        print(f"ganbench: error: cannot write the report: {exc}", file=sys.stderr)
        return 2


def _report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.report.build import write_report
    from bench.store import Store

    if args.figure_workers is not None and args.figure_workers < 1:
        print(f"ganbench: error: --workers must be >= 1, got {args.figure_workers}",
              file=sys.stderr)
        return 2
    Store(args.store, create=False).close()  # a missing store is an input error, before writing
    out = Path(args.out) if args.out else Path(args.store) / "report"
    command = "ganbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else ""
    report = write_report(args.store, out, grid=args.grid, bootstrap=args.bootstrap,
                          command=command if "report" in command else "",
                          samples=not args.no_samples, image_references=args.image_references,
                          pdf=not args.no_pdf, workers=args.figure_workers)
    tables = len(report.study_tables) + len(report.tables)
    print(f"{tables} tables, {len(report.figures)} figures, "
          f"{len(report.samples)} sample sheets -> {out / 'index.md'}")
    return 0
