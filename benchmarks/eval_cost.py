"""Cost of scoring one 16x16 digits cell, against a typical cell's training time.

Scores an untrained DCGAN-like generator on ``digits`` with the classifier extractor at
num_samples=2000 and every metric (fid, is, kid, prc, dc, modes), after a warm-up call that trains
/ loads the classifier and caches the reference features -- the steady state of a sweep. Target:
eval <= 10% of a 16x16 cell's training time (~2,000 steps x ~20 ms = 40 s, so <= 4 s).

    .venv/bin/python benchmarks/eval_cost.py [--repeats 3] [--cache-dir DIR] [--breakdown]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.data import load_dataset  # noqa: E402
from bench.metrics import EvalSpec, evaluate_samples  # noqa: E402

TRAIN_STEPS = 2000
STEP_SECONDS = 0.020  # a typical 16x16 DCGAN step (G + D update, batch 64) on this CPU
TARGET_FRACTION = 0.10


def tiny_generator(z_dim: int = 64, width: int = 64) -> nn.Module:
    """z -> 4x4 -> 8x8 -> 16x16, DCGAN style (untrained)."""
    return nn.Sequential(
        nn.Unflatten(1, (z_dim, 1, 1)),
        nn.ConvTranspose2d(z_dim, width * 2, 4, 1, 0, bias=False), nn.ReLU(),
        nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False), nn.ReLU(),
        nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh(),
    )


def tiny_discriminator(width: int = 64) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width, width * 2, 4, 2, 1), nn.LeakyReLU(0.2),
        nn.Conv2d(width * 2, 1, 4, 1, 0), nn.Flatten(),
    )


def measure_train_step(g: nn.Module, steps: int = 30, batch: int = 64) -> float:
    """Seconds per G+D update of the inline nets (non-saturating loss, Adam), after 5 warm-up steps."""
    d = tiny_discriminator()
    og = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    od = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = load_dataset("digits").train
    bce = nn.functional.softplus
    times = []
    for i in range(steps + 5):
        t0 = time.perf_counter()
        x = real[torch.randint(0, len(real), (batch,))]
        z = torch.randn(batch, 64)
        loss_d = bce(-d(x)).mean() + bce(d(g(z).detach())).mean()
        od.zero_grad()
        loss_d.backward()
        od.step()
        loss_g = bce(-d(g(torch.randn(batch, 64)))).mean()
        og.zero_grad()
        loss_g.backward()
        og.step()
        if i >= 5:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-samples", type=int, default=2000)
    ap.add_argument("--cache-dir", default=None, help="default: $GANBENCH_CACHE or ~/.cache/ganbench")
    ap.add_argument("--breakdown", action="store_true", help="also time each metric group alone")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    device = torch.device("cpu")
    ds = load_dataset("digits")
    g = tiny_generator().eval()

    def sample_fn(n: int, gen: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            return g(torch.randn(n, 64, generator=gen))

    spec = EvalSpec(num_samples=args.num_samples, cache_dir=args.cache_dir)
    t0 = time.perf_counter()
    metrics, protocol = evaluate_samples(sample_fn, ds, spec, device)
    warm = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        evaluate_samples(sample_fn, ds, spec, device)
        times.append(time.perf_counter() - t0)
    eval_s = statistics.median(times)
    budget = TRAIN_STEPS * STEP_SECONDS
    print(f"torch threads: {torch.get_num_threads()}, num_samples={spec.num_samples}, "
          f"reference={protocol['num_reference']} test images, metrics={','.join(spec.metrics)}")
    print(f"first call (classifier train/load + reference features): {warm:.2f} s")
    print(f"eval seconds, cached classifier + reference: median {eval_s:.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f}, {args.repeats} runs)")
    print(f"stated typical 16x16 cell training: {TRAIN_STEPS} steps x {STEP_SECONDS * 1000:.0f} ms = {budget:.0f} s")
    frac = eval_s / budget
    print(f"eval / stated training = {100 * frac:.1f}% (target <= {100 * TARGET_FRACTION:.0f}%): "
          f"{'OK' if frac <= TARGET_FRACTION else 'OVER BUDGET'}")
    # A shared CPU can be several times slower than usual; a step measured now puts both on one clock.
    step = measure_train_step(tiny_generator())
    print(f"measured now: inline DCGAN G+D step (batch 64) = {step * 1000:.1f} ms -> "
          f"{TRAIN_STEPS * step:.0f} s per {TRAIN_STEPS} steps; eval / that = "
          f"{100 * eval_s / (TRAIN_STEPS * step):.1f}%")
    print("metrics of the untrained generator:", {k: round(float(v), 4) for k, v in metrics.items()})
    if args.breakdown:
        for group in (("fid",), ("is",), ("kid",), ("prc",), ("dc",), ("modes",)):
            s = EvalSpec(metrics=group, num_samples=args.num_samples, cache_dir=args.cache_dir)
            t0 = time.perf_counter()
            evaluate_samples(sample_fn, ds, s, device)
            print(f"  {group[0]:>5}: {time.perf_counter() - t0:.2f} s (sampling + features + metric)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
