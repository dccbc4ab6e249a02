"""`ganbench run`: train and score every cell of a grid (resumable, lease-safe).

Exit codes: 0 when every cell has a record and none failed; 1 when some cell failed (the summary
says how many; `--retry failed` reruns them); 2 for bad input; 130 after Ctrl-C (SIGINT) and 143
after SIGTERM (running cells checkpoint; the summary and the command that resumes are printed)."""
from __future__ import annotations

import argparse
import shlex
import signal
import sys
from pathlib import Path

from bench.cli.common import (DEFAULT_STORE, LOG, PLACEMENT_HELP, CliError, add_curve_option,
                              add_data_options, add_device_option, add_eval_options,
                              add_tensorboard_option, eval_spec_from, load_data, quiet)

RETRYABLE = ("failed", "diverged")


def register(sub) -> None:
    p = sub.add_parser("run", help="train and score every cell of a grid (resumable)")
    p.add_argument("--grid", default="cpu-default", help="preset name (bench/grids/) or a .toml path")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--workers", type=int, default=None,
                   help="processes (default: CPU cores, at most 8)")
    add_device_option(p, PLACEMENT_HELP)
    p.add_argument("--cells-per-gpu", type=int, default=None, metavar="N",
                   help="cells training at once on each GPU (default: workers / GPUs)")
    p.add_argument("--retry", default="", metavar="STATUSES",
                   help="train stored cells with these statuses again, e.g. failed,diverged "
                        "(the old record is kept in the new one's history)")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local: a pool of worker processes; ray: each cell or fused group a Ray task "
                        "(pip install 'ganbench[ray]'; the store must be on a shared path)")
    p.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    p.add_argument("--only", metavar="VARIANTS",
                   help="train only these variants, comma-separated labels or wildcards (e.g. "
                        "baseline,unrolled); the store still records the whole grid")
    p.add_argument("--datasets", metavar="NAMES",
                   help="train only the cells of these datasets of the grid (comma-separated)")
    p.add_argument("--no-fuse", action="store_true",
                   help="train every cell in its own worker (default: cells that differ only in "
                        "seed and learning rates, with tricks the fused engine supports, train "
                        "as one vectorised step per worker or Ray task; docs/fused.md). Same as "
                        "GANBENCH_NO_FUSE=1")
    p.add_argument("--dry-run", action="store_true",
                   help="list the cells by design, dataset and stored status; train nothing")
    add_eval_options(p)
    add_data_options(p)
    add_curve_option(p)
    add_tensorboard_option(p)
    p.set_defaults(func=run)


def parse_retry(text: str) -> tuple[str, ...]:
    wanted = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in wanted if s not in RETRYABLE]
    if bad:
        raise CliError(f"--retry takes {', '.join(RETRYABLE)}, got {', '.join(bad)}")
    return wanted


def resume_command(args: argparse.Namespace) -> str:
    """The command that continues this run with the same options: every `run` option whose value
    differs from its default, read off the parser, so a new option cannot be left out (a resume
    under another eval protocol would make the report drop cells)."""
    words = ["ganbench", "run", "--grid", args.grid, "--store", args.store]
    for action in _run_parser()._actions:
        if not action.option_strings or action.dest in ("help", "grid", "store"):
            continue
        value = getattr(args, action.dest, None)
        if value is None or value == action.default:  # None: unset (or --device auto, normalized)
            continue
        option = max(action.option_strings, key=len)
        words += [option] if isinstance(action, argparse._StoreTrueAction) else [option, str(value)]
    return " ".join(shlex.quote(str(w)) for w in words)


def _run_parser() -> argparse.ArgumentParser:
    from bench.cli.common import Parser

    sub = Parser(prog="ganbench").add_subparsers()
    register(sub)
    return sub.choices["run"]


def check_inputs(args: argparse.Namespace, cells: list, store: Path):
    """Everything `run` refuses before training (data, resolution, batch size, metrics, the
    store), shared with --dry-run so a dry run passes exactly when the run would start. Writes
    nothing to the store. Returns the eval spec."""
    from bench.schedule.dry_run import check_store_path

    for cell in {(c.data.name, c.data.resolution): c for c in cells}.values():
        load_data(args, cell)
    if args.executor == "ray" and str(args.device).startswith("cuda"):  # the cluster's GPUs
        from bench.schedule.ray_executor import check_cluster_device, expected_cluster_size

        check_cluster_device(args.device, expected_cluster_size(args.address)[1], args.address)
    spec = eval_spec_from(args)
    check_store_path(store)
    return spec


def run(args: argparse.Namespace) -> int:
    from bench.schedule.grid import load_grid
    from bench.schedule.run_output import RunTable

    retry = parse_retry(args.retry)
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    if args.cells_per_gpu is not None and args.cells_per_gpu < 1:
        raise CliError(f"--cells-per-gpu must be >= 1, got {args.cells_per_gpu}")
    if args.address and args.executor != "ray":
        raise CliError("--address is for --executor ray")
    if args.executor == "ray":
        from bench.schedule.ray_executor import _import_ray

        _import_ray()  # a missing extra fails before anything is written
    from bench.schedule.grid.select import select

    whole = load_grid(args.grid)
    grid = select(whole, args.only, args.datasets)
    cells = list(grid.cells)
    spec = check_inputs(args, cells, Path(args.store))
    if args.dry_run:
        from bench.schedule.dry_run import print_dry_run

        print_dry_run(grid, Path(args.store), workers=args.workers or 1, device=args.device,
                      retry=retry, fuse=False if args.no_fuse else None,
                      executor=args.executor, address=args.address)
        return 0
    write_memberships(whole, Path(args.store))
    from bench.schedule.staged import run_staged

    table = RunTable(cells, sys.stdout)
    where = (f"Ray at {args.address or 'a local Ray'}" if args.executor == "ray"
             else f"{args.workers} worker(s)")
    part = f" of {len(whole.cells)}" if len(cells) < len(whole.cells) else ""
    table.header(f"grid '{grid.name}': {len(table.cells)}{part} cells -> {args.store} ({where}"
                 + (f"; retrying {', '.join(retry)}" if retry else "") + ")")
    stage2_known: list[bool] = []  # held-out tuning: stage 2 is known once stage 1 is done

    def on_stage2(stage2) -> None:
        stage2_known.append(True)
        table.extend(stage2.cells, stage2_title(grid, stage2))

    try:
        for record in run_staged(grid, Path(args.store), whole=whole, on_stage2=on_stage2,
                                 workers=args.workers, eval_spec=spec,
                                 device=args.device, progress=not quiet(),
                                 curve_every=args.curve_every, retry=retry,
                                 cells_per_gpu=args.cells_per_gpu,
                                 executor=args.executor, address=args.address,
                                 fuse=False if args.no_fuse else None):
            table.add(record)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (executor.Stopped)
        signum = getattr(exc, "signum", signal.SIGINT)
        table.flush_rest()
        if table.finished and (stage2_known or not grid.plans):  # nothing was cut short
            print(table.summary(args.store, len(table.cells)), flush=True)
            print(f"ganbench: {signal.Signals(signum).name} after every cell had finished; "
                  f"nothing to resume", file=sys.stderr, flush=True)
            return table.exit_code(args.store)
        print(table.summary(args.store, len(table.cells)), file=sys.stderr)
        print(f"ganbench: interrupted ({signal.Signals(signum).name}); running cells kept their "
              f"checkpoints. Resume with:\n  {resume_command(args)}", file=sys.stderr, flush=True)
        return 128 + signum
    print(table.summary(args.store, len(table.cells)), flush=True)
    return table.exit_code(args.store)


def stage2_title(grid, stage2) -> str:
    """The line above held-out tuning's stage 2 in the run table."""
    seeds = sorted({s for p in grid.plans for s in p.eval_seeds})
    tuned = sorted({s for p in grid.plans for s in p.tune_seeds})
    line = (f"stage 2: {len(stage2.cells)} cells: each variant at the setting chosen on tuning "
            f"seeds {tuned}, trained on evaluation seeds {seeds}")
    if stage2.pending:
        line += f" ({len(stage2.pending)} variant(s) still lack tuning records)"
    return line


def write_memberships(grid, store_root: Path) -> None:
    """Which design asked for each cell, for the reports (Store.put_grid)."""
    members = getattr(grid, "members", None)
    if members is None:
        return
    from bench.store import Store

    with Store(store_root) as store:
        before = store.grids().get(grid.name, {}).get("source")
        now = grid.spec.get("source")
        if before and now and before != now:
            LOG.warning(f"store {store_root} recorded grid '{grid.name}' from {before}; {now} "
                        f"has the same name and replaces its list of cells (rename one file to "
                        f"keep both)")
        from bench.schedule.staged import stage2_of  # evaluation cells the stored tuning decides

        store.put_grid(grid.name, grid.spec, list(members) + stage2_of(grid, store_root).members)
