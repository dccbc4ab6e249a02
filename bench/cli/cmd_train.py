"""`ganbench train`: train and score one cell."""
from __future__ import annotations

import argparse

from bench.cli.common import (DEFAULT_STORE, add_curve_option, add_data_options, add_eval_options,
                              eval_spec_from, load_data, parse_tricks)
from bench.config import CellConfig, DataConfig, NetConfig, OptimConfig, TrainConfig


def register(sub) -> None:
    p = sub.add_parser("train", help="train and score one cell")
    p.add_argument("--dataset", required=True)
    p.add_argument("--resolution", type=int)
    p.add_argument("--tricks", default="", help="comma-separated trick names")
    p.add_argument("--param", action="append", default=[], metavar="TRICK.NAME=VALUE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, help="Adam lr of both nets (default 2e-4)")
    p.add_argument("--width", type=int, help="net width (default: 128 MLP, 32 DCGAN)")
    p.add_argument("--checkpoint-every", type=int, default=500)
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    p.add_argument("--json", action="store_true", help="print the record as one JSON object")
    add_eval_options(p)
    add_data_options(p)
    add_curve_option(p)
    p.set_defaults(func=run)


def build_cell(args: argparse.Namespace) -> CellConfig:
    from bench.data import dataset_kind
    from bench.grid import full_spec
    from bench.registry import build_tricks

    kind = dataset_kind(args.dataset)
    specs = [full_spec(n, p) for n, p in parse_tricks(args.tricks, args.param)]
    build_tricks(((s.name, s.param_dict) for s in specs), kind)
    opt = OptimConfig(lr=args.lr) if args.lr is not None else OptimConfig()
    train = TrainConfig(steps=args.steps, batch_size=args.batch_size, g_optim=opt, d_optim=opt,
                        checkpoint_every=args.checkpoint_every)
    net = NetConfig(**({"width": args.width} if args.width else {}))
    return CellConfig(data=DataConfig(args.dataset, args.resolution), net=net, train=train,
                      tricks=tuple(specs), seed=args.seed)


def run(args: argparse.Namespace) -> int:
    from bench.runner import run_cell
    from bench.store import Store

    cell = build_cell(args)
    spec = eval_spec_from(args)
    load_data(args, cell)
    with Store(args.store) as store:
        record = run_cell(cell, store, eval_spec=spec, device=args.device,
                          progress=not args.json, curve_every=args.curve_every)
    if args.json:
        print(record.to_json())
    else:
        print(record.summary_line())
    return 0
