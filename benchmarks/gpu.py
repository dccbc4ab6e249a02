"""GPU (or CPU) throughput in one run: the harness's step time against a plain PyTorch loop on the
same nets for 2-D, 16 px and 32 px cells, then the aggregate steps/s of 1, 2, 4 and 8 worker
processes training cells side by side on the same device (the scheduler's several-cells-per-GPU
mode; issue 8's target is >= 3x one worker with 4 workers on 32 px cells).

    python benchmarks/gpu.py [--device cuda] [--steps 300] [--rounds 3] [--workers 1,2,4,8]
    python benchmarks/gpu.py --device cpu --quick      # seconds: a smoke test for CI

The 32 px cell uses CIFAR-10 when its files are present, else random data of the same shape
(step time does not depend on pixel values). Figures depend on the machine and its load:
quote them with the device name this prints.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout

from bench.core.config import (CellConfig, DataConfig, NetConfig, OptimConfig,  # noqa: E402
                               TrainConfig)
from bench.data import DataError, Dataset, load_dataset  # noqa: E402
from benchmarks.overhead import harness_ms, plain_ms  # noqa: E402

# The cells of issue 8's measurements: ring8 MLP batch 256; DCGAN 16 px width 32 and 32 px
# width 64, batch 64.
CASES = {
    "2d": ("ring8 MLP 3x128, batch 256", CellConfig(
        DataConfig("ring8"), NetConfig(width=128),
        TrainConfig(batch_size=256, g_optim=OptimConfig(1e-3), d_optim=OptimConfig(1e-3)))),
    "16px": ("digits 16 px DCGAN w32, batch 64", CellConfig(
        DataConfig("digits"), NetConfig(width=32), TrainConfig(batch_size=64))),
    "32px": ("cifar10 32 px DCGAN w64, batch 64", CellConfig(
        DataConfig("cifar10", 32), NetConfig(width=64), TrainConfig(batch_size=64))),
}


def dataset_for(cell: CellConfig) -> tuple[Dataset, bool]:
    """The cell's data, or random data of its shape when the files are absent (synthetic=True)."""
    try:
        return load_dataset(cell.data.name, resolution=cell.data.resolution), False
    except DataError:
        if cell.data.name != "cifar10":
            raise
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2048, 3, 32, 32, generator=g) * 2 - 1
    y = torch.randint(0, 10, (2048,), generator=g)
    return Dataset(name="cifar10", kind="image", shape=(3, 32, 32), train=x, test=x[:512],
                   train_labels=y, test_labels=y[:512], num_classes=10, num_modes=10), True


def overhead(keys: list[str], device: str, steps: int, rounds: int, warmup: int) -> list[dict]:
    rows = []
    for key in keys:
        name, cell = CASES[key]
        data, synthetic = dataset_for(cell)
        h, p = [], []
        for _ in range(rounds):  # interleaved, so load on the machine hits both alike
            h.append(harness_ms(cell, steps, device, data, warmup))
            p.append(plain_ms(cell, steps, device, data, warmup))
        hm, pm = statistics.median(h), statistics.median(p)
        rows.append({"case": key, "name": name + (" (synthetic data)" if synthetic else ""),
                     "harness_ms": hm, "plain_ms": pm, "ratio": hm / pm})
    return rows


def _worker(key: str, device: str, steps: int, warmup: int, seed: int, barrier, out) -> None:
    """One process training one cell: build and warm up, wait for the others, then time."""
    from bench.train import Trainer

    torch.set_num_threads(1)  # parallelism comes from processes, as in the scheduler
    _, cell = CASES[key]
    data, _ = dataset_for(cell)
    trainer = Trainer(cell.replace(seed=seed), device=device, progress=False, dataset=data)
    for _ in range(warmup):
        trainer.train_step()
    barrier.wait()
    start = time.time()
    for _ in range(steps):
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    out.put((start, time.time(), steps))


def aggregate_steps_per_s(key: str, device: str, workers: int, steps: int, warmup: int) -> float:
    """Total steps per second of `workers` processes each training its own cell at once."""
    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    barrier, out = ctx.Barrier(workers), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(key, device, steps, warmup, seed, barrier, out))
             for seed in range(workers)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
        if p.exitcode != 0:
            raise RuntimeError(f"a benchmark worker exited with code {p.exitcode}")
    start, end = min(r[0] for r in results), max(r[1] for r in results)
    return sum(r[2] for r in results) / (end - start)


def sharing(key: str, device: str, counts: list[int], steps: int, warmup: int) -> list[dict]:
    rows = []
    for n in counts:
        rows.append({"workers": n, "steps_per_s": aggregate_steps_per_s(key, device, n, steps,
                                                                        warmup)})
    base = next((r["steps_per_s"] for r in rows if r["workers"] == 1), None)
    for row in rows:
        row["x_one_worker"] = row["steps_per_s"] / base if base else None
    return rows


def device_name(device: str) -> str:
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({torch.get_num_threads()} threads for the overhead table, 1 per worker)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, help="timed steps per measurement (300; quick 3)")
    ap.add_argument("--rounds", type=int, help="interleaved rounds, median (3; quick 1)")
    ap.add_argument("--warmup", type=int, help="untimed steps first (10; quick 1)")
    ap.add_argument("--cases", default="2d,16px,32px", help="cells for harness vs plain")
    ap.add_argument("--workers", help="worker counts sharing the device (1,2,4,8; quick 1,2)")
    ap.add_argument("--worker-cell", choices=sorted(CASES),
                    help="the cell each worker trains (32px; quick 2d)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (overhead table)")
    ap.add_argument("--quick", action="store_true",
                    help="a few steps, one round, 1 and 2 workers on the 2-D cell (smoke test); "
                         "options given explicitly still win")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    defaults = ({"steps": 3, "rounds": 1, "warmup": 1, "workers": "1,2", "worker_cell": "2d"}
                if args.quick else
                {"steps": 300, "rounds": 3, "warmup": 10, "workers": "1,2,4,8",
                 "worker_cell": "32px"})
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    cases = [c for c in args.cases.split(",") if c]
    counts = [int(n) for n in args.workers.split(",") if n]
    if unknown := sorted(set(cases) - set(CASES)):
        ap.error(f"unknown case(s) {', '.join(unknown)} (choices: {', '.join(CASES)})")
    torch.set_num_threads(args.threads)

    result = {"device": args.device, "device_name": device_name(args.device),
              "steps": args.steps, "rounds": args.rounds,
              "overhead": overhead(cases, args.device, args.steps, args.rounds, args.warmup),
              "worker_cell": args.worker_cell,
              "sharing": sharing(args.worker_cell, args.device, counts, args.steps, args.warmup)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"device: {result['device_name']}; {args.steps} steps, median of {args.rounds} round(s)")
    print(f"{'case':<50} {'harness ms':>11} {'plain ms':>9} {'ratio':>6}")
    for r in result["overhead"]:
        print(f"{r['name']:<50} {r['harness_ms']:>11.3f} {r['plain_ms']:>9.3f} {r['ratio']:>6.3f}")
    print(f"\nworkers sharing {args.device} on the {CASES[args.worker_cell][0]} cell:")
    print(f"{'workers':>7} {'steps/s':>10} {'x one worker':>13}")
    for r in result["sharing"]:
        x = f"{r['x_one_worker']:.2f}" if r["x_one_worker"] is not None else "-"
        print(f"{r['workers']:>7} {r['steps_per_s']:>10.1f} {x:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
