"""`ganbench` command line. Every bad input ends with one line on stderr and exit code 2,
and is caught before anything is written to the store."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from bench.config import CellConfig, ConfigError, DataConfig, NetConfig, OptimConfig, TrainConfig

EXIT_USAGE = 2
DEFAULT_STORE = "runs/default"


class CliError(Exception):
    pass


def _input_errors() -> tuple[type[BaseException], ...]:
    from bench.data import DataError
    from bench.metrics import MetricError
    from bench.store import StoreError
    from bench.trick import TrickError

    return (CliError, ConfigError, TrickError, DataError, StoreError, MetricError)


# -- trick specs on the command line --------------------------------------------------------------
def parse_value(text: str) -> Any:
    """`--param a.b=V`: V is read as JSON (numbers, true/false, "strings"), else as a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_tricks(tricks: str, params: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    names = [n.strip() for n in tricks.split(",") if n.strip()] if tricks else []
    out: dict[str, dict[str, Any]] = {n: {} for n in names}
    for item in params:
        key, sep, value = item.partition("=")
        trick, dot, pname = key.partition(".")
        if not sep or not dot or not pname:
            raise CliError(f"--param expects TRICK.NAME=VALUE, got '{item}'")
        if trick not in out:
            raise CliError(f"--param names trick '{trick}', which is not in --tricks")
        out[trick][pname] = parse_value(value)
    return list(out.items())


# -- commands ---------------------------------------------------------------------------------------
def cmd_tricks(args: argparse.Namespace) -> int:
    from bench.registry import describe, list_tricks

    names = list_tricks(args.pattern)
    if not names:
        raise CliError(f"no trick matches '{args.pattern}'")
    if args.matrix:
        return _print_matrix(names, args.json)
    infos = [describe(n) for n in names]
    if args.markdown:
        print(markdown_table(infos))
        return 0
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for info in infos:
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in info["params"]) or "-"
        print(f"{info['name']:<28} {info['summary']}")
        print(f"{'':<28} source: {info['source']}; applies to: {', '.join(info['applies_to'])}")
        print(f"{'':<28} params: {params}")
        if info["slots"]:
            print(f"{'':<28} slots: {', '.join(info['slots'])}")
        for other, why in {**info["excludes"], **info["requires"]}.items():
            print(f"{'':<28} {'excludes' if other in info['excludes'] else 'requires'} {other}: {why}")
    return 0


def markdown_table(infos: list[dict[str, Any]]) -> str:
    """The README's table of tricks."""
    rows = ["| trick | what it changes | source | default params | slots | data |",
            "|---|---|---|---|---|---|"]
    for i in infos:
        params = ", ".join(f"{p['name']}={p['default']}" for p in i["params"]) or "–"
        rows.append(f"| `{i['name']}` | {i['summary']} | {i['source']} | {params} | "
                    f"{', '.join(i['slots']) or '–'} | {', '.join(i['applies_to'])} |")
    return "\n".join(rows)


def _print_matrix(names: list[str], as_json: bool) -> int:
    from bench.registry import conflict_reasons, create_trick

    tricks = {n: create_trick(n) for n in names}
    matrix = {a: {b: conflict_reasons([tricks[a], tricks[b]]) if a != b else []
                  for b in names} for a in names}
    if as_json:
        print(json.dumps(matrix, indent=2))
        return 0
    width = max(len(n) for n in names)
    print(" " * width + "  " + " ".join(f"{i:>2}" for i in range(len(names))))
    for i, a in enumerate(names):
        cells = " ".join(" x" if matrix[a][b] else (" ." if a != b else " -") for b in names)
        print(f"{a:>{width}}  {cells}  {i}")
    print("\nx = not allowed together:")
    seen = set()
    for a in names:
        for b in names:
            if matrix[a][b] and frozenset((a, b)) not in seen:
                seen.add(frozenset((a, b)))
                print(f"  {a} + {b}: {'; '.join(matrix[a][b])}")
    return 0


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


def eval_spec_from(args: argparse.Namespace):
    from bench.metrics import EvalSpec

    kw: dict[str, Any] = {}
    if getattr(args, "metrics", None):
        kw["metrics"] = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    if getattr(args, "extractor", None):
        kw["extractor"] = args.extractor
    if getattr(args, "n", None):
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


def _load_data(args: argparse.Namespace, cell: CellConfig) -> None:
    """Load (and cache) the data before the store is touched, so missing files write nothing."""
    from bench.data import load_dataset

    load_dataset(cell.data.name, resolution=cell.data.resolution, root=args.data_root,
                 download=args.download)


def cmd_train(args: argparse.Namespace) -> int:
    from bench.runner import run_cell
    from bench.store import Store

    cell = build_cell(args)
    spec = eval_spec_from(args)
    _load_data(args, cell)
    with Store(args.store) as store:
        record = run_cell(cell, store, eval_spec=spec, device=args.device,
                          progress=not args.json, curve_every=args.curve_every)
    if args.json:
        print(record.to_json())
    else:
        print(record.summary_line())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.executor import run_cells
    from bench.grid import load_grid

    grid = load_grid(args.grid)
    cells = list(grid.cells)
    for cell in {(c.data.name, c.data.resolution): c for c in cells}.values():
        _load_data(args, cell)
    spec = eval_spec_from(args)
    workers = args.workers
    print(f"grid '{grid.name}': {len(cells)} cells -> {args.store} ({workers} worker(s))",
          file=sys.stderr)
    for record in run_cells(cells, Path(args.store), workers=workers, eval_spec=spec,
                            device=args.device, progress=True, curve_every=args.curve_every):
        print(record.summary_line(), flush=True)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from bench.store import Store

    with Store(args.store, create=False) as store:
        counts = store.counts()
    if args.json:
        print(json.dumps({"store": str(args.store), "counts": counts,
                          "total": sum(counts.values())}))
    else:
        for status, n in sorted(counts.items()):
            print(f"{status:<15} {n}")
        print(f"{'total':<15} {sum(counts.values())}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from bench.store import Store

    with Store(args.store, create=False) as store:
        ids = [store.resolve_id(args.cell)] if args.cell else None
        records = list(store.records(ids=ids))
    for r in records:
        print(r.to_json() if args.json else r.summary_line())
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from bench.rescore import rescore

    spec = eval_spec_from(args)
    for record in rescore(Path(args.store), args.cell, spec, device=args.device):
        print(record.to_json() if args.json else record.summary_line())
    return 0


def cmd_weights(args: argparse.Namespace) -> int:
    from bench.metrics.inception import default_converted_weights_path, install_inception_weights

    out = Path(args.out).expanduser() if args.out else default_converted_weights_path()
    if out.exists() and not args.force:
        raise CliError(f"{out} exists; pass --force to overwrite it")
    path, sha = install_inception_weights(out_path=out)
    print(f"wrote {path} (sha256 {sha}); it is used by --extractor inception-v3-compat "
          f"(or pass --inception-weights {path})")
    return 0


# -- parser -------------------------------------------------------------------------------------------
def _add_eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--metrics", help="comma list of fid,is,kid,prc,dc,modes (default: all)")
    p.add_argument("--extractor", help="classifier (default) or inception-v3-compat")
    p.add_argument("--n", type=int, help="generated samples for image metrics")
    p.add_argument("--inception-weights", help="inception-v3-compat weights file (offline use)")
    p.add_argument("--ref-samples", type=int, help="reference samples (default: min(test split, --n))")
    p.add_argument("--stacked-samples", type=int, help="samples for stacked-mode counting (26,000)")
    p.add_argument("--eval-seed", type=int, help="seed of the evaluation z draws (default 0)")


def _add_curve_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--curve-every", type=int, default=None, metavar="N",
                   help="score cheap metrics every N steps into the record's curves "
                        "(default: 10 points per run; 0: off)")


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="dataset folder (default: $GANBENCH_DATA or ~/.cache/ganbench/data)")
    p.add_argument("--download", action="store_true", help="download torchvision datasets if missing")


def make_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="ganbench", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("tricks", help="list registered tricks")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard filter, e.g. '*noise*'")
    p.add_argument("--json", action="store_true")
    p.add_argument("--matrix", action="store_true", help="pairwise compatibility matrix")
    p.add_argument("--markdown", action="store_true", help="the README's table of tricks")
    p.set_defaults(func=cmd_tricks)

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
    _add_eval_options(p)
    _add_data_options(p)
    _add_curve_option(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="train and score every cell of a grid (resumable)")
    p.add_argument("--grid", default="cpu-default", help="preset name in grids/ or a .toml path")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--device", default="auto")
    _add_eval_options(p)
    _add_data_options(p)
    _add_curve_option(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="count stored cells by status")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("show", help="print stored records")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--cell", help="cell id (or unique prefix)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("eval", help="(re)score stored cells from their final checkpoints")
    p.add_argument("--store", default=DEFAULT_STORE)
    p.add_argument("--cell", help="cell id (or unique prefix); default: every finished cell")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true")
    _add_eval_options(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("weights", help="prepare metric weights offline")
    p.add_argument("which", choices=["inception"])
    p.add_argument("--out", help="output file (default: <cache>/weights/, where the "
                   "inception extractor looks; cache = $GANBENCH_CACHE or ~/.cache/ganbench)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_weights)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    if getattr(args, "workers", 0) is None:
        from bench.executor import default_workers

        args.workers = default_workers()
    if getattr(args, "device", None) == "auto":
        args.device = None
    if getattr(args, "data_root", None):
        # Every later load (the trainer, pool workers) finds data through $GANBENCH_DATA; the
        # root is machine-local, so it is not part of a cell's config or id.
        os.environ["GANBENCH_DATA"] = str(Path(args.data_root).expanduser().resolve())
    try:
        if (getattr(args, "curve_every", None) or 0) < 0:
            raise CliError("--curve-every must be >= 0")
        return args.func(args)
    except _input_errors() as exc:
        print(f"ganbench: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `ganbench tricks | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("ganbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
