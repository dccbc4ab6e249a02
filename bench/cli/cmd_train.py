"""`ganbench train`: train and score one cell.

Exit codes: 0 when the cell's record is `done` (or a `conflict` / `not-applicable` record says
why it may not run); 1 when it is `failed` or `diverged` (as `run`), or when this process lost
the cell's lease to another run while training (it stops without writing; the other run stores
the cell); 2 for bad input."""
from __future__ import annotations

import argparse
import sys
import time

from bench.cli.common import (DEFAULT_STORE, LOG, PLACEMENT_HELP, add_curve_option,
                              add_data_options, add_device_option, add_eval_options,
                              add_tensorboard_option, eval_spec_from, load_data, parse_tricks,
                              quiet)
from bench.core.config import (G_LOSS_NAMES, CellConfig, DataConfig, NetConfig, OptimConfig,
                               TrainConfig, env_threads)


def register(sub) -> None:
    from bench.data import dataset_names

    p = sub.add_parser("train", help="train and score one cell",
                       description="Train and score one cell. A cell already in the store is "
                                   "returned as stored (say --force to train it again).")
    p.add_argument("--dataset", required=True,
                   help=f"one of: {', '.join(dataset_names())}")
    p.add_argument("--resolution", type=int, help="image side in pixels (default: per dataset)")
    p.add_argument("--tricks", default="", help="comma-separated trick names (see `ganbench tricks`)")
    p.add_argument("--param", action="append", default=[], metavar="TRICK.NAME=VALUE",
                   help="a trick parameter; repeat for several")
    p.add_argument("--seed", type=int, default=0, help="training seed (>= 0)")
    p.add_argument("--steps", type=int, default=2000, help="generator updates")
    p.add_argument("--batch-size", type=int, default=64, help="samples per batch")
    p.add_argument("--lr", type=float, help="Adam lr of both nets (default 2e-4)")
    p.add_argument("--g-lr", type=float, help="G's own Adam lr (overrides --lr for G)")
    p.add_argument("--d-lr", type=float, help="D's own Adam lr (overrides --lr for D)")
    p.add_argument("--width", type=int, help="net width (default: 128 MLP, 32 DCGAN)")
    p.add_argument("--z-dim", type=int, default=NetConfig.z_dim, help="latent dimensions")
    p.add_argument("--depth", type=int, default=NetConfig.depth,
                   help="MLP hidden layers (2-D data; the DCGAN nets ignore it)")
    p.add_argument("--activation", default="default", choices=["default", "tanh"],
                   help="2-D MLPs' hidden activation: default (ReLU in G, LeakyReLU 0.2 in D) or "
                        "tanh")
    p.add_argument("--init", default="normal", choices=["normal", "orthogonal"],
                   help="weight init: N(0, 0.02) or orthogonal with gain 1.4")
    p.add_argument("--g-loss", default=TrainConfig.g_loss, choices=list(G_LOSS_NAMES),
                   help="G's baseline loss when no trick replaces it: non_saturating "
                        "-log D(G(z)) or minimax log(1 - D(G(z)))")
    p.add_argument("--log-every", type=int, default=TrainConfig.log_every,
                   help="steps averaged into one point of the loss curves")
    p.add_argument("--stop-on", choices=["hard"],
                   help="end the cell early at a hard failure flag (D loss collapse, G loss "
                        "runaway), stored as diverged (default: off)")
    p.add_argument("--checkpoint-every", type=int, default=500,
                   help="steps between checkpoints (0: only at the end)")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--force", action="store_true",
                   help="train a stored cell again as a new attempt (the old record is kept "
                        "in the new record's history)")
    add_device_option(p, PLACEMENT_HELP)
    p.add_argument("--json", action="store_true", help="print the record as one JSON object")
    add_eval_options(p)
    add_data_options(p)
    add_curve_option(p)
    add_tensorboard_option(p)
    p.set_defaults(func=run)


def build_cell(args: argparse.Namespace) -> CellConfig:
    from bench.data import dataset_kind, dataset_traits
    from bench.schedule.grid import full_spec
    from bench.trickapi.registry import build_tricks

    kind = dataset_kind(args.dataset)
    specs = [full_spec(n, p) for n, p in parse_tricks(args.tricks, args.param)]
    build_tricks(((s.name, s.param_dict) for s in specs), kind, dataset_traits(args.dataset))
    lr = args.lr if args.lr is not None else OptimConfig.lr
    g_opt = OptimConfig(lr=args.g_lr if args.g_lr is not None else lr)
    d_opt = OptimConfig(lr=args.d_lr if args.d_lr is not None else lr)
    train = TrainConfig(steps=args.steps, batch_size=args.batch_size, g_optim=g_opt, d_optim=d_opt,
                        checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                        stop_on=args.stop_on or "", g_loss=args.g_loss, threads=env_threads())
    # `is not None`: --width 0 is a bad value (refused by NetConfig), not "use the default"
    net = NetConfig(z_dim=args.z_dim, depth=args.depth, activation=args.activation, init=args.init,
                    **({"width": args.width} if args.width is not None else {}))
    net.check_kind(kind)
    return CellConfig(data=DataConfig(args.dataset, args.resolution), net=net, train=train,
                      tricks=tuple(specs), seed=args.seed)


def retire_for_retraining(store, cell: CellConfig) -> None:
    """`--force`: the stored record goes to the store's `retired` table (the next record of the
    cell carries it in its history, event "retrain") and the final checkpoint is removed, so the
    cell trains from step 0 instead of resuming from its end. Checkpoint first: a crash in
    between leaves the record in place and `--force` can simply be repeated."""
    from bench.train.trainer import CHECKPOINT

    if not store.has(cell.cell_id):
        return
    from bench.train.checkpoint import previous_path

    path = store.cell_dir(cell.cell_id) / CHECKPOINT
    try:
        path.unlink(missing_ok=True)
        previous_path(path).unlink(missing_ok=True)
    except OSError as exc:
        from bench.store import StoreError

        raise StoreError(f"cannot remove the old checkpoint {path}: {exc.strerror or exc}") from None
    store.retire(cell.cell_id, "retrain")


def run(args: argparse.Namespace) -> int:
    from bench.schedule.runner import LeaseLostError, run_cell
    from bench.store import Store

    cell = build_cell(args)
    spec = eval_spec_from(args)
    if getattr(args, "metrics", None):  # asked for by name: each must apply to this dataset
        from bench.data import dataset_kind
        from bench.metrics import available_metrics

        from bench.cli.common import CliError

        kind = dataset_kind(cell.data.name)
        bad = [m for m in spec.metrics if m not in available_metrics(kind)]
        if bad:
            raise CliError(f"--metrics {','.join(bad)} does not apply to {cell.data.name} "
                           f"({kind} data, scored on: {', '.join(available_metrics(kind))})")
    load_data(args, cell)
    with Store(args.store) as store:
        stored = store.get(cell.cell_id)
        if stored is not None and args.force:
            retire_for_retraining(store, cell)
        elif stored is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(stored.created_at))
            LOG.info(f"cell {cell.cell_id} is already in {args.store} ({stored.status}, "
                     f"stored {when}); showing the stored record without training. Add --force "
                     f"to train it again as a new attempt (the old record is kept in its "
                     f"history).")
        # as `run`: no '\r' lines in logs
        progress = not args.json and sys.stderr.isatty() and not quiet()
        try:
            record = run_cell(cell, store, eval_spec=spec,
                              device=_device_for(cell, args.device), progress=progress,
                              curve_every=args.curve_every)
        except LeaseLostError:  # run_cell said so in one line; nothing was written
            return 1
    if record is None:  # stopped (Ctrl-C): its checkpoint is on disk
        print("ganbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if stored is not None and args.force:  # a rerun: say when it did not reproduce
        from bench.schedule.runner import rerun_difference

        note = rerun_difference(stored, record)
        if note:
            print(note, file=sys.stderr)
    if args.json:
        print(record.to_json())
    else:
        print(record.summary_line())
    return 1 if record.status in ("failed", "diverged") else 0


def _device_for(cell: CellConfig, device: str | None) -> str | None:
    """`--device auto` places the cell as `run` would (2-D cells on the CPU, where a tiny MLP
    step is faster than on a GPU); an explicit device is used as given."""
    import torch

    from bench.data import dataset_kind
    from bench.schedule.placement import choose_device

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return choose_device(dataset_kind(cell.data.name), gpus=gpus, device=device,
                         gpu_load=[0] * gpus, cells_per_gpu=1)
