"""Shared pieces of the command line: the error contract, trick specs on the command line, and
options several commands take. Every bad input ends with one line on stderr and exit code 2, and is
caught before anything is written to the store."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, Sequence

from bench.core.config import CellConfig, ConfigError

EXIT_USAGE = 2
DEFAULT_STORE = "runs/default"
# what the commands say besides their output: info (default), warnings only (-q), debug (-v)
LOG = logging.getLogger("ganbench")


class _Handler(logging.Handler):
    """`ganbench: <message>` (`ganbench: warning: ...` from warnings up) on stderr, through
    tqdm.write, so a message never lands inside a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = record.getMessage()
            level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
            line = f"ganbench: {level}{msg}"
            if "tqdm" in sys.modules:  # a bar may be on the terminal (no import otherwise)
                from tqdm import tqdm

                tqdm.write(line, file=sys.stderr)
            else:
                print(line, file=sys.stderr)
            sys.stderr.flush()
        except Exception:  # noqa: BLE001  (logging must never end a run)
            self.handleError(record)


def setup_logging(verbosity: int = 0) -> None:
    """-q (verbosity < 0): warnings and errors only, no progress bars; default: info; -v: debug
    too. Idempotent (main calls it on every invocation)."""
    LOG.handlers[:] = [_Handler()]
    LOG.propagate = False
    LOG.setLevel(logging.WARNING if verbosity < 0 else logging.DEBUG if verbosity > 0
                 else logging.INFO)


if not LOG.handlers:  # a command called without `main` (tests, scripts) still says things
    setup_logging()


def quiet() -> bool:
    """-q was given: no progress bars."""
    return LOG.getEffectiveLevel() > logging.INFO


def add_verbosity_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-q / -v, on `ganbench` and on every command (`ganbench -q run` = `ganbench run -q`)."""
    default = 0 if top else argparse.SUPPRESS
    p.add_argument("-q", "--quiet", action="count", default=default,
                   help="warnings and errors only, no progress bars")
    p.add_argument("-v", "--verbose", action="count", default=default,
                   help="say more (debug messages: what is skipped, reused, timed)")


class CliError(Exception):
    pass


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default, except where there is none to show (None, False) or the
    help text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        d = action.default
        if d is None or d is False or d is argparse.SUPPRESS or d == "" or d == [] \
                or "default" in text:
            return text
        return super()._get_help_string(action)


class Parser(argparse.ArgumentParser):
    """argparse with the suite's error contract: a usage error is one line on stderr, exit 2.
    Sub-command parsers inherit the class, so every command gets it (and shows defaults)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"ganbench: error: {' '.join(message.split())} "
                              f"(see '{self.prog} --help')\n")


# Exceptions whose message is one line meant for the user (printed, exit 2), by module: some of
# those modules import torch, which the torch-free commands (report, status, ...) never load.
_INPUT_ERRORS = (("bench.trickapi.trick", "TrickError"), ("bench.data.base", "DataError"),
                 ("bench.store.db", "StoreError"), ("bench.metrics.errors", "MetricError"),
                 ("bench.train.checkpoint", "CheckpointError"))


def input_errors() -> tuple[type[BaseException], ...]:
    """The user-facing error types whose modules are loaded: an error of a type can only have
    been raised once its module was imported, so the others need not be (nor torch with them)."""
    loaded = [getattr(sys.modules[mod], name) for mod, name in _INPUT_ERRORS if mod in sys.modules]
    return (CliError, ConfigError, *loaded)


# -- trick specs on the command line --------------------------------------------------------------
def parse_value(text: str) -> Any:
    """`--param a.b=V`: V is read as JSON (numbers, true/false, "strings"), else as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_tricks(tricks: str, params: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    names = [n.strip() for n in tricks.split(",") if n.strip()] if tricks else []
    if tricks and tricks.strip() and not names:  # e.g. `--tricks ,,`: not the baseline by accident
        raise CliError(f"--tricks {tricks!r} names no trick; leave --tricks out to train the "
                       f"baseline")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CliError(f"--tricks names {', '.join(repr(n) for n in twice)} more than once; "
                       f"list each trick once")
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for item in params:
        key, sep, value = item.partition("=")
        trick, dot, pname = key.partition(".")
        if not sep or not dot or not pname:
            raise CliError(f"--param expects TRICK.NAME=VALUE, got '{item}'")
        if trick not in out:
            raise CliError(f"--param names trick '{trick}', which is not in --tricks")
        if pname in out[trick]:  # last-wins would silently drop one of the two values
            raise CliError(f"--param gives {trick}.{pname} more than once; give each "
                           f"parameter once")
        out[trick][pname] = parse_value(value)
    return list(out.items())


def eval_spec_from(args: argparse.Namespace):
    from bench.metrics import EvalSpec

    kw: dict[str, Any] = {}
    if getattr(args, "metrics", None):
        kw["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if getattr(args, "extractor", None):
        kw["extractor"] = args.extractor
    if getattr(args, "n", None) is not None:  # 0 is a bad value, not "unset"
        kw["num_samples"] = args.n
    for opt, field in (("inception_weights", "inception_weights"), ("ref_samples", "ref_samples"),
                       ("stacked_samples", "stacked_samples"), ("eval_seed", "seed")):
        if getattr(args, opt, None) is not None:
            kw[field] = getattr(args, opt)
    spec = EvalSpec(**kw)
    if spec.extractor == "inception-v3-compat":  # missing weights fail now, not after training
        from bench.metrics.inception import resolve_inception_weights

        resolve_inception_weights(spec.inception_weights, spec.cache_dir)
    return spec


def load_data(args: argparse.Namespace, cell: CellConfig) -> None:
    """Load (and cache) the data before the store is touched, so missing files write nothing;
    a batch the training set cannot fill is refused here too."""
    from bench.data import load_dataset

    data = load_dataset(cell.data.name, resolution=cell.data.resolution, root=args.data_root,
                        download=args.download)
    if cell.train.batch_size > len(data.train):
        raise CliError(f"batch size {cell.train.batch_size} is larger than the {cell.data.name} "
                       f"training set ({len(data.train)} samples)")


# --device for commands that place cells as `run` does (bench/schedule/placement.py)
PLACEMENT_HELP = ("auto: image cells and fused groups on the GPUs (round-robin), 2-D cells "
                  "trained alone on the CPU; cpu; cuda (every cell on the GPUs); cuda:N")


def add_device_option(p: argparse.ArgumentParser,
                      help: str = "where to train and score: auto = CUDA if present, else cpu"
                      ) -> None:
    from bench.core.config import DEVICE_CHOICES

    p.add_argument("--device", default="auto", metavar="{" + ",".join(DEVICE_CHOICES) + "}",
                   help=help)


def add_tensorboard_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tensorboard", metavar="DIR",
                   help="live curves: one TensorBoard run per cell in DIR (losses, eval curves, "
                        "final metrics and samples; needs the tensorboard package; "
                        "`tensorboard --logdir DIR` shows them)")


def check_common_options(args: argparse.Namespace) -> None:
    """Values several commands share, checked before any command runs (so before any store is
    created): the device exists, counts are positive, --tensorboard can write."""
    if getattr(args, "tensorboard", None):
        import os
        from pathlib import Path

        from bench.train.tensorboard import ENV, missing_reason

        reason = missing_reason()
        if reason:
            raise CliError(reason)
        folder = Path(args.tensorboard).expanduser().resolve()
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CliError(f"cannot write --tensorboard {args.tensorboard}: "
                           f"{exc.strerror or exc}") from None
        os.environ[ENV] = str(folder)  # pool workers inherit it
    if getattr(args, "device", None) is not None:
        from bench.train.runtime import pick_device

        # with --executor ray the cluster's GPUs count, not this machine's (cmd_run checks them)
        pick_device(args.device, here=getattr(args, "executor", "local") != "ray")
    if (getattr(args, "curve_every", None) or 0) < 0:
        raise CliError(f"--curve-every must be >= 0, got {args.curve_every}")
    workers = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        raise CliError(f"--workers must be >= 1, got {workers}")
    cell = getattr(args, "cell", None)
    if cell is not None and not cell.strip():  # '' would otherwise read as "every cell"
        raise CliError("--cell is empty: give a cell id (or a unique prefix), or leave --cell "
                       "out")


def add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", help="comma list of fid,is,kid,prc,dc,modes (default: all)")
    p.add_argument("--extractor", help="classifier (default) or inception-v3-compat")
    p.add_argument("--n", type=int, help="generated samples for image metrics")
    p.add_argument("--inception-weights", help="inception-v3-compat weights file (offline use)")
    p.add_argument("--ref-samples", type=int, help="reference samples (default: min(test split, --n))")
    p.add_argument("--stacked-samples", type=int, help="samples for stacked-mode counting (26,000)")
    p.add_argument("--eval-seed", type=int, help="seed of the evaluation z draws (default 0)")


def add_curve_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--curve-every", type=int, default=None, metavar="N",
                   help="score cheap metrics every N steps into the record's curves "
                        "(default: 10 points per run; 0: off)")


def add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="dataset folder (default: $GANBENCH_DATA or ~/.cache/ganbench/data)")
    p.add_argument("--download", action="store_true", help="download torchvision datasets if missing")


def grid_members(store, grid: str) -> list[dict]:
    """A grid's members in grid order: as recorded in the store, else from its grid file."""
    if grid in store.grids():
        return store.members(grid)
    from bench.schedule.grid import load_grid

    return list(load_grid(grid).members)
