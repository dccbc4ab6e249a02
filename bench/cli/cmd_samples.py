"""`ganbench samples`: rewrite a stored cell's sample file from its final checkpoint."""
from __future__ import annotations

import argparse

from bench.cli.common import DEFAULT_STORE, CliError, add_device_option


def register(sub) -> None:
    p = sub.add_parser("samples", help="regenerate a cell's sample file from its final checkpoint")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--cell", required=True, help="cell id (or unique prefix)")
    p.add_argument("--n", type=int, help="samples to draw (default: 2,500 points for 2-D data, "
                                         "64 images)")
    add_device_option(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bench.metrics import EvalSpec
    from bench.train.samples import write_samples
    from bench.store import Store, StoreError
    from bench.train import Trainer

    if args.n is not None and args.n < 1:
        raise CliError(f"--n must be >= 1, got {args.n}")
    with Store(args.store, create=False) as store:
        if store.read_only:  # refused before the checkpoint is loaded, as `eval` does
            raise StoreError(f"store {store.db_path} is read-only here; samples writes to it")
        record = store.get(store.resolve_id(args.cell))
        if record.status != "done":
            raise StoreError(f"cell {record.cell_id} is '{record.status}': it has no final "
                             "generator to sample")
        cell = store.checked_cell(record)
        workdir = store.cell_dir(cell.cell_id)
    trainer = Trainer(cell, workdir=workdir, device=args.device, progress=False)
    if not trainer.try_resume() or trainer.step != trainer.steps:
        raise StoreError(f"cell {record.cell_id} has no final checkpoint in {workdir}")
    # the scorer's sampling seed, so the default file equals the one written at scoring time
    spec = EvalSpec(seed=int(record.protocol.get("seed", 0)))
    try:
        path = write_samples(trainer.sample, trainer.data, workdir, spec, trainer.device, n=args.n)
    except OSError as exc:  # e.g. a read-only cell folder: one line, the old file is kept
        raise StoreError(f"cannot write the sample file in {workdir}: "
                         f"{exc.strerror or exc}") from None
    print(path)
    return 0
