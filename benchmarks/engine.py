"""Throughput of the fused engine (bench/train/fused): cell-steps per second when K cells train as
one vectorised step, against one cell trained alone by the Trainer (one cell per process), on
the same device and thread count, measured in one run.

    python benchmarks/engine.py [--device cpu|cuda|auto] [--ks 1,8,64,512] [--threads 1,2]
                                [--seconds 3] [--nets ring8,pacgan] [--quick]

Prints the device's name, then one row per (nets, threads, K): ms per fused step, cell-steps/s
and the ratio to one cell alone. "alone x cores" is what separate processes would reach on
every core of this machine at best (one single-thread cell per core, no contention).
A K is skipped (with the reason) when its estimated memory does not fit.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.core.config import (CellConfig, DataConfig, NetConfig, OptimConfig,  # noqa: E402
                               TrainConfig)
from bench.data import load_dataset  # noqa: E402
from bench.train import Trainer  # noqa: E402
from bench.train.fused import CellStreams, FusedTrainer  # noqa: E402

# the nets measured: name -> (dataset, NetConfig, batch, tricks)
NETS = {
    # ring8 3x128: the cpu-default / paper-2d MLP (ReLU G, LeakyReLU D), batch 256
    "ring8": ("ring8", NetConfig(z_dim=64, width=128, depth=3), 256, ()),
}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or 'CPU'} ({os.cpu_count()} logical CPUs)"


def cell(dataset: str, net: NetConfig, batch: int, tricks, seed: int, steps: int) -> CellConfig:
    opt = OptimConfig(lr=1e-3)
    return CellConfig(data=DataConfig(dataset), net=net,
                      train=TrainConfig(steps=steps, batch_size=batch, g_optim=opt, d_optim=opt,
                                        log_every=50, checkpoint_every=0),
                      tricks=tricks, seed=seed)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(step, device: torch.device, seconds: float, warmup: int = 2) -> tuple[float, int]:
    """(seconds per call, calls timed): calls `step` until `seconds` have passed (at least 3)."""
    for _ in range(warmup):
        step()
    sync(device)
    n, start = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - start < seconds:
        step()
        n += 1
        if n % 5 == 0:
            sync(device)
    sync(device)
    return (time.perf_counter() - start) / n, n


def alone_rate(spec, device, seconds) -> float:
    """Cell-steps/s of one cell trained by the Trainer (on the CPU for a CUDA run too when
    device is cpu; the 2-D cells' single-cell runs are CPU runs)."""
    dataset, net, batch, tricks = spec
    tr = Trainer(cell(dataset, net, batch, tricks, 0, 10**6), device=device, progress=False)
    per, _ = timed(tr.train_step, device, seconds)
    return 1.0 / per


def fused_rate(spec, k: int, device, seconds) -> tuple[float, float]:
    dataset, net, batch, tricks = spec
    data = load_dataset(dataset)
    trainers, states = [], []
    for s in range(k):  # cells are built on the CPU, as the reference cells are
        trainers.append(Trainer(cell(dataset, net, batch, tricks, s, 10**6), device="cpu",
                                progress=False, dataset=data))
        states.append(CellStreams.capture())
    engine = FusedTrainer(trainers, states, device=device)
    per, _ = timed(engine.train_step, device, seconds)
    return per * 1000, k / per


def fits(spec, k: int, device: torch.device) -> str | None:
    """None, or why K cells would not fit (activations of ~12 live layers per net, float32)."""
    _, net, batch, _ = spec
    need = k * batch * (net.width or 128) * 4 * 12 * 6
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return None if need < 0.8 * free else f"needs ~{need / 2**30:.1f} GiB"
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None
    return None if need < 0.5 * avail else f"needs ~{need / 2**30:.1f} GiB"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--ks", default="1,8,64,512", help="group sizes K")
    ap.add_argument("--threads", default=None,
                    help="CPU threads to measure, comma-separated (default 1,2 on CPU; ignored "
                         "on CUDA)")
    ap.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    ap.add_argument("--nets", default="ring8", help=f"comma-separated: {', '.join(NETS)}")
    ap.add_argument("--quick", action="store_true", help="K 1 and 8, 0.5 s each (smoke test)")
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("engine.py: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    ks = [int(k) for k in args.ks.split(",")]
    seconds = args.seconds
    if args.quick:
        ks, seconds = [k for k in ks if k <= 8] or [1], 0.5
    nets = [n.strip() for n in args.nets.split(",")]
    unknown = [n for n in nets if n not in NETS]
    if unknown:
        print(f"engine.py: unknown nets {unknown} (known: {', '.join(NETS)})", file=sys.stderr)
        return 2
    if device.type == "cuda":
        threads = [torch.get_num_threads()]
    else:
        threads = [int(t) for t in (args.threads or "1,2").split(",")]
    cores = os.cpu_count() or 1
    print(f"device: {device} = {device_name(device)}; torch {torch.__version__}")
    print(f"{'nets':<8} {'threads':>7} {'K':>5} {'ms/step':>9} {'cell-steps/s':>13} "
          f"{'x alone':>8}")
    for name in nets:
        spec = NETS[name]
        for th in threads:
            torch.set_num_threads(th)
            alone = alone_rate(spec, device, seconds)
            print(f"{name:<8} {th:>7} {'alone':>5} {1000 / alone:>9.2f} {alone:>13.0f} "
                  f"{1.0:>8.2f}", flush=True)
            if device.type == "cpu" and th == 1 and cores > 1:
                print(f"{name:<8} {th:>7} {'x' + str(cores):>5} {'':>9} {alone * cores:>13.0f} "
                      f"{cores:>8.2f}   (alone x cores: separate processes at best)", flush=True)
            for k in ks:
                why = fits(spec, k, device)
                if why:
                    print(f"{name:<8} {th:>7} {k:>5}  skipped: {why}", flush=True)
                    continue
                ms, rate = fused_rate(spec, k, device, seconds)
                print(f"{name:<8} {th:>7} {k:>5} {ms:>9.2f} {rate:>13.0f} {rate / alone:>8.2f}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
