"""Throughput of the fused engine (bench/train/fused): cell-steps per second when K cells train as
one vectorised step, against one cell trained alone by the Trainer (one cell per process), on
the same device and thread count, measured in one run.

    python benchmarks/engine.py [--device cpu|cuda|auto] [--ks 1,8,64,512] [--threads 1,2]
                                [--seconds 3] [--nets ring8,pacgan,digits] [--quick]

Prints the device's name, then one row per (nets, threads, K): ms per fused step, fused
cell-steps/s, the cell alone's cell-steps/s and their ratio, medians of interleaved rounds (the
cell alone, then the K cells fused, each about --seconds), so load that comes and goes on a
shared machine hits both alike. Separate single-thread processes on every core reach at best
cores x the cell alone at 1 thread. A K is skipped (with the reason) when its estimated memory
does not fit. `pacgan` measures the first 2-D cell of the `pacgan-t1` preset (PacGAN's nets and
its packing), where that preset exists; `digits` the image cell of `cpu-default` (DCGAN-style
conv nets, 16x16).
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
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
    # the image cell of cpu-default: DCGAN-style conv nets on digits 16x16, width 16, batch 32
    "digits": ("digits", NetConfig(z_dim=64, width=16, depth=3), 32, ()),
}


def pacgan_spec():
    """(dataset, net, batch, tricks) of the pacgan-t1 preset's first cell, or None."""
    try:
        from bench.schedule.grid import load_grid

        first = load_grid("pacgan-t1").cells[0]
    except Exception:  # the preset is not installed (yet)
        return None
    return (first.data.name, first.net, first.train.batch_size, first.tricks)


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


def alone_trainer(spec, device) -> Trainer:
    """One cell trained by the Trainer, as a cell alone in its process."""
    dataset, net, batch, tricks = spec
    return Trainer(cell(dataset, net, batch, tricks, 0, 10**6), device=device, progress=False)


def fused_engine(spec, k: int, device) -> FusedTrainer:
    dataset, net, batch, tricks = spec
    data = load_dataset(dataset)
    trainers, states = [], []
    for s in range(k):  # cells are built on the CPU, as the reference cells are
        trainers.append(Trainer(cell(dataset, net, batch, tricks, s, 10**6), device="cpu",
                                progress=False, dataset=data))
        states.append(CellStreams.capture())
    return FusedTrainer(trainers, states, device=device)


def interleaved(alone: Trainer, engine: FusedTrainer, k: int, device, seconds: float,
                rounds: int) -> tuple[float, float, float]:
    """(alone cell-steps/s, fused cell-steps/s, ratio): medians over `rounds` rounds, each
    timing the cell alone and then the K fused cells for about `seconds` each, so load that
    comes and goes on a shared machine hits both alike."""
    rates_alone, rates_fused, ratios = [], [], []
    for _ in range(rounds):
        per_alone, _ = timed(alone.train_step, device, seconds)
        per_fused, _ = timed(engine.train_step, device, seconds, warmup=1)
        rates_alone.append(1 / per_alone)
        rates_fused.append(k / per_fused)
        ratios.append(per_alone * k / per_fused)
    return (statistics.median(rates_alone), statistics.median(rates_fused),
            statistics.median(ratios))


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
    ap.add_argument("--rounds", type=int, default=3,
                    help="interleaved rounds per K (median; K = 512 on a CPU: 1)")
    ap.add_argument("--quick", action="store_true", help="K 1 and 8, 0.5 s each (smoke test)")
    args = ap.parse_args(argv)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("engine.py: --device cuda but CUDA is not available", file=sys.stderr)
        return 2
    try:
        ks = [int(k) for k in args.ks.split(",")]
        threads_asked = [int(t) for t in (args.threads or "1,2").split(",")]
    except ValueError:
        print(f"engine.py: --ks and --threads take comma-separated integers, got "
              f"{args.ks!r} and {args.threads!r}", file=sys.stderr)
        return 2
    if min(ks) < 1 or min(threads_asked) < 1 or args.seconds <= 0 or args.rounds < 1:
        print("engine.py: --ks, --threads and --rounds must be >= 1 and --seconds > 0",
              file=sys.stderr)
        return 2
    seconds = args.seconds
    if args.quick:
        ks, seconds, args.rounds = [k for k in ks if k <= 8] or [1], 0.5, 1
    pac = pacgan_spec()
    if pac is not None:
        NETS["pacgan"] = pac
    nets = [n.strip() for n in args.nets.split(",")]
    unknown = [n for n in nets if n not in NETS]
    if unknown:
        print(f"engine.py: unknown nets {unknown} (known: {', '.join(NETS)}; pacgan needs the "
              f"pacgan-t1 preset)", file=sys.stderr)
        return 2
    if device.type == "cuda":
        threads = [torch.get_num_threads()]
    else:
        threads = threads_asked
    cores = os.cpu_count() or 1
    print(f"device: {device} = {device_name(device)}; torch {torch.__version__}")
    print(f"{'nets':<8} {'threads':>7} {'K':>5} {'ms/step':>9} {'cell-steps/s':>13} "
          f"{'alone':>13} {'x alone':>8}")
    for name in nets:
        spec = NETS[name]
        for th in threads:
            torch.set_num_threads(th)
            alone = alone_trainer(spec, device)
            for k in ks:
                why = fits(spec, k, device)
                if why:
                    print(f"{name:<8} {th:>7} {k:>5}  skipped: {why}", flush=True)
                    continue
                engine = fused_engine(spec, k, device)
                rounds = args.rounds if k < 512 or device.type == "cuda" else 1
                a, f, ratio = interleaved(alone, engine, k, device, seconds, rounds)
                print(f"{name:<8} {th:>7} {k:>5} {k / f * 1000:>9.1f} {f:>13.1f} {a:>13.1f} "
                      f"{ratio:>8.2f}", flush=True)
            if device.type == "cpu":
                print(f"{name:<8} {th:>7}  (separate single-thread processes on all {cores} "
                      f"cores reach at best {cores}x alone at 1 thread)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
