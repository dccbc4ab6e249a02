"""Step time of the harness's baseline cell vs a hand-written plain PyTorch GAN loop with the same
networks, batch and data, measured in one run (interleaved rounds, median), printed as a ratio.
Target: <= 1.05 on 2-D and 16x16 images.

    python benchmarks/overhead.py [--steps 300] [--rounds 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from bench.core.config import CellConfig, DataConfig, NetConfig, OptimConfig, TrainConfig
from bench.data import Dataset, load_dataset
from bench.nets import build_nets
from bench.train import Trainer


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # CUDA kernels run asynchronously: wait before reading the clock
        torch.cuda.synchronize(device)


def timed_ms(step, steps: int, device: torch.device, warmup: int = 10) -> float:
    """Milliseconds per call of `step(i)`, after `warmup` calls."""
    for i in range(warmup):
        step(i)
    _sync(device)
    start = time.perf_counter()
    for i in range(steps):
        step(warmup + i)
    _sync(device)
    return 1000 * (time.perf_counter() - start) / steps


def harness_ms(cell: CellConfig, steps: int, device: str | torch.device = "cpu",
               data: Dataset | None = None, warmup: int = 10) -> float:
    device = torch.device(device)
    trainer = Trainer(cell, device=device, progress=False, dataset=data)
    return timed_ms(lambda i: trainer.train_step(), steps, device, warmup)


def plain_ms(cell: CellConfig, steps: int, device: str | torch.device = "cpu",
             data: Dataset | None = None, warmup: int = 10) -> float:
    """The same GAN step written as a plain PyTorch loop (no hooks, no trick set)."""
    device = torch.device(device)
    train = (data or load_dataset(cell.data.name, resolution=cell.data.resolution)).train.to(device)
    torch.manual_seed(cell.seed)
    nets = build_nets(cell.net, "2d" if train.dim() == 2 else "image", tuple(train.shape[1:]))
    G, D = nets.G.to(device), nets.D.to(device)
    opt = cell.train.g_optim
    g_opt = torch.optim.Adam(G.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    d_opt = torch.optim.Adam(D.parameters(), lr=opt.lr, betas=(opt.beta1, opt.beta2))
    B, zd = cell.train.batch_size, cell.net.z_dim
    perm = torch.randperm(len(train), device=device)

    def step(i: int) -> None:
        start = (i * B) % (len(train) - B + 1)
        real = train[perm[start:start + B]]
        with torch.no_grad():
            fake = G(torch.randn(B, zd, device=device))
        d_real, d_fake = D(real), D(fake)
        d_loss = (F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
                  + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake)))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        out = D(G(torch.randn(B, zd, device=device)))
        g_loss = F.binary_cross_entropy_with_logits(out, torch.ones_like(out))
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()

    return timed_ms(step, steps, device, warmup)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cases = {
        "ring8 MLP 3x128, batch 256": CellConfig(
            DataConfig("ring8"), NetConfig(width=128),
            TrainConfig(batch_size=256, g_optim=OptimConfig(1e-3), d_optim=OptimConfig(1e-3))),
        "digits 16x16 DCGAN w32, batch 64": CellConfig(DataConfig("digits"), NetConfig(width=32),
                                                        TrainConfig(batch_size=64)),
    }
    print(f"{'case':<36} {'harness ms':>11} {'plain ms':>9} {'ratio':>6}")
    for name, cell in cases.items():
        steps = args.steps if cell.data.name == "ring8" else max(args.steps // 5, 20)
        h, p = [], []
        for _ in range(args.rounds):  # interleaved so machine noise hits both alike
            h.append(harness_ms(cell, steps))
            p.append(plain_ms(cell, steps))
        hm, pm = statistics.median(h), statistics.median(p)
        print(f"{name:<36} {hm:>11.3f} {pm:>9.3f} {hm / pm:>6.3f}")


if __name__ == "__main__":
    main()
