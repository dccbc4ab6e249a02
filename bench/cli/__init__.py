"""`ganbench` command line. Every bad input ends with one line on stderr and exit code 2,
and is caught before anything is written to the store.

DESCRIPTION below is what `ganbench --help` shows.

One module per command (`cmd_<name>.py`, each with `register(subparsers)` and `run(args)`);
options and error handling shared between commands live in `common.py`.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from bench.cli import (cmd_check, cmd_compare, cmd_designs, cmd_eval, cmd_report, cmd_run, cmd_samples,
                       cmd_show, cmd_status, cmd_train, cmd_tricks, cmd_weights)
from bench.cli.common import (EXIT_USAGE, Parser, add_verbosity_options, check_common_options,
                              input_errors, setup_logging)

COMMANDS = (cmd_tricks, cmd_train, cmd_run, cmd_designs, cmd_status, cmd_show, cmd_eval, cmd_weights,
            cmd_report, cmd_samples, cmd_compare, cmd_check)

DESCRIPTION = ("Benchmark GAN training tricks: train and score cells (dataset x tricks x seed) "
               "into a resumable store, alone or as grids, and list the tricks and their "
               "conflicts. Every bad input ends with one line on stderr and exit code 2.")


class _VersionAction(argparse.Action):
    """--version, importing `ganbench` (which imports torch) only when asked: `ganbench report`
    must run where torch cannot be imported."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, **kw):
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from ganbench import __version__

        print(f"ganbench {__version__}")
        parser.exit()


# Commands that never import torch (tests/test_fast_cli.py runs them where torch cannot be
# imported; `tricks` once its cached descriptions are current: bench/cli/trick_catalog.py).
# Every parser is torch-free to build; when one of these is named, only its parser is built,
# which is quicker still.
TORCH_FREE = ("report", "designs", "status", "show", "check", "tricks")


def make_parser(only: str | None = None) -> argparse.ArgumentParser:
    ap = Parser(prog="ganbench", description=DESCRIPTION)
    ap.add_argument("--version", action=_VersionAction)
    add_verbosity_options(ap, top=True)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        if only is None or command.__name__.endswith(f".cmd_{only}"):
            command.register(sub)
    for p in sub.choices.values():
        add_verbosity_options(p)
    return ap


def _torch_free_command(argv: Sequence[str] | None) -> str | None:
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)  # after -q / -v
    return first if first in TORCH_FREE else None


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = make_parser(_torch_free_command(argv)).parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (already printed, one line)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    setup_logging((args.verbose or 0) - (args.quiet or 0))
    try:
        check_common_options(args)
    except input_errors() as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if getattr(args, "workers", 0) is None:
        from bench.schedule.executor import default_workers

        args.workers = default_workers()
    if getattr(args, "device", None) == "auto":
        args.device = None
    if getattr(args, "data_root", None):
        # Every later load (the trainer, pool workers) finds data through $GANBENCH_DATA; the
        # root is machine-local, so it is not part of a cell's config or id.
        os.environ["GANBENCH_DATA"] = str(Path(args.data_root).expanduser().resolve())
    try:
        return args.func(args)
    except input_errors() as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `ganbench tricks | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM through executor.Stopped
        print("ganbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 128 + getattr(exc, "signum", 2)


__all__ = ["main", "make_parser", "COMMANDS"]
