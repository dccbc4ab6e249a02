"""A fused slice of a grid: the grid's fusable groups (cells equal but for seed and learning
rates, with tricks the engine supports) each train a few steps as one fused step; prints each
group's throughput, the time its whole budget would take at that rate, and the cells that would
run one per process, with the reason. Nothing is stored (no workdir, no checkpoints).

    python benchmarks/fused_slice.py [--grid paper-2d] [--datasets ring8] [--only baseline]
                                     [--steps 200] [--device cuda|cpu|auto] [--max-seconds 240]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.core.config import ConfigError  # noqa: E402
from bench.data import load_dataset  # noqa: E402
from bench.schedule.grid import load_grid  # noqa: E402
from bench.schedule.grid.select import select  # noqa: E402
from bench.schedule.fused.plan import plan_groups  # noqa: E402
from bench.train import Trainer  # noqa: E402
from bench.train.fused import CellStreams, FusedTrainer, NotFusable  # noqa: E402


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", default="paper-2d")
    ap.add_argument("--datasets", default=None)
    ap.add_argument("--only", default=None)
    ap.add_argument("--steps", type=int, default=200, help="steps timed per group")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-seconds", type=float, default=240.0,
                    help="stop starting new groups after this long")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.device not in ("auto", "cpu", "cuda") and \
            not args.device.startswith("cuda:"):
        print(f"fused_slice.py: --steps must be >= 1 and --device auto, cpu, cuda or cuda:N "
              f"(got {args.steps}, {args.device!r})", file=sys.stderr)
        return 2
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu")
                          if args.device == "auto" else args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("fused_slice.py: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    try:
        grid = select(load_grid(args.grid), args.only, args.datasets)
    except (ConfigError, OSError) as exc:
        print(f"fused_slice.py: {exc}", file=sys.stderr)
        return 2
    plan = plan_groups(list(grid.cells), fuse=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"grid {grid.name}: {len(grid.cells)} cells, {sum(map(len, plan.groups))} in "
          f"{len(plan.groups)} fusable groups, {len(plan.alone)} one per process; "
          f"device {device} ({name})")
    started, total_min = time.perf_counter(), 0.0
    print(f"{'dataset':<10} {'variant':<28} {'K':>3} {'ms/step':>9} {'cell-steps/s':>13} "
          f"{'full budget':>12}")
    measured = 0
    for group in plan.groups:
        if time.perf_counter() - started > args.max_seconds:
            print(f"(stopped after {args.max_seconds:.0f} s; "
                  f"{len(plan.groups) - measured} groups not measured)")
            break
        data = load_dataset(group[0].data.name, resolution=group[0].data.resolution)
        trainers, states = [], []
        for cell in group:
            trainers.append(Trainer(cell, device="cpu", progress=False, dataset=data))
            states.append(CellStreams.capture())
        try:
            engine = FusedTrainer(trainers, states, device=device)
        except NotFusable as exc:  # the scheduler would train these cells alone
            measured += 1
            print(f"{group[0].data.name:<10} {group[0].label:<28} {len(group):>3} not fused "
                  f"once built: {exc}", flush=True)
            continue
        engine.train_step()  # warm-up (allocations, kernels)
        sync(device)
        t0 = time.perf_counter()
        n = min(args.steps, group[0].train.steps - 1)
        for _ in range(n):
            engine.train_step()
        sync(device)
        per = (time.perf_counter() - t0) / n
        full = per * group[0].train.steps / 60
        total_min += full
        measured += 1
        print(f"{group[0].data.name:<10} {group[0].label:<28} {len(group):>3} {per * 1000:>9.2f} "
              f"{len(group) / per:>13.1f} {full:>10.1f} m", flush=True)
    print(f"fused groups measured: {measured}/{len(plan.groups)}; their full budgets one group "
          f"after another: {total_min:.1f} min")
    reasons: dict[str, int] = {}
    for why in plan.alone.values():
        reasons[why] = reasons.get(why, 0) + 1
    for why, n in sorted(reasons.items()):
        print(f"one per process: {n} cells: {why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
