"""Speed of minibatch discrimination's closeness sums: version 3 (`pair_closeness`: each pair
once, cache-sized tiles) against version 2's computation (`l1_distances`, then exp and a sum
over the batch), forward + backward of sum(u * s) on the same random M, interleaved rounds, the
fastest round of each in CPU seconds of this process (the machine is shared, so wall time
would also count other work), printed with their ratio and the largest difference of the
sums relative to the largest sum.

    python benchmarks/minibatch_discrimination_speed.py [--batch 512] [--kernels 100] [--dims 5]

Measured on the 2-core reference machine (shared with other work, nice 10, 1 thread),
`--batch 512` (paper-2d's batch, 100 kernels x 5 dims): see the lines in the README's
minibatch_discrimination notes and the trick's docstring.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tricks.minibatch_discrimination import l1_distances, pair_closeness  # noqa: E402


def version2_closeness(m: torch.Tensor) -> torch.Tensor:
    """Version 2's sums: [N, N, K] L1 distances (cdist forward, explicit backward), exp, sum."""
    return torch.exp(-l1_distances(m)).sum(dim=1)


def cpu_seconds(fn, m: torch.Tensor, u: torch.Tensor) -> float:
    m = m.detach().requires_grad_(True)
    start = time.process_time()
    (fn(m) * u).sum().backward()
    return time.process_time() - start


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--kernels", type=int, default=100)
    ap.add_argument("--dims", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if min(args.batch, args.kernels, args.dims, args.rounds, args.threads) < 1:
        ap.error("every option must be >= 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = torch.randn(args.batch, args.kernels, args.dims)
    u = torch.randn(args.batch, args.kernels)
    with torch.no_grad():
        old_sums = version2_closeness(m)
        diff = ((pair_closeness(m) - old_sums).abs().max() / old_sums.abs().max()).item()
    old, new = [], []
    for _ in range(args.rounds):
        old.append(cpu_seconds(version2_closeness, m, u))
        new.append(cpu_seconds(pair_closeness, m, u))
    print(f"batch {args.batch}, {args.kernels} kernels x {args.dims} dims, "
          f"{args.threads} thread(s), forward + backward, fastest of {args.rounds}: "
          f"version 2 {min(old):.3f} s, version 3 {min(new):.3f} s, "
          f"ratio {min(old) / min(new):.1f}x; sums differ by at most {diff:.1g} of their largest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
