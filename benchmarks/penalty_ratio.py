"""How much a penalty trick's gradient outweighs the adversarial one (issue 10, item 5).

For every `--every`-th step of a ring8 cell (cpu-default settings: batch 256, Adam(1e-3, 0.5),
MLP 3x128) it takes, on the terms of that very update, r = ||grad_theta penalty|| /
||grad_theta adversarial loss|| for the net being updated, and prints per weight: the median of r
over the run, its 90th percentile, and the share of measured steps with r < 1.

    .venv/bin/python benchmarks/penalty_ratio.py historical_averaging weight 1 0.1 0.01 0.001
    .venv/bin/python benchmarks/penalty_ratio.py weight_penalty lam 0.01 0.001 0.0001
    .venv/bin/python benchmarks/penalty_ratio.py path_length weight 2 0.2 0.02 --seed 100
    .venv/bin/python benchmarks/penalty_ratio.py path_length weight 2 --fixed interval=1

The numbers in the tricks' docstrings come from these commands (seed 0, 2,000 steps).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.core.config import (CellConfig, DataConfig, NetConfig, OptimConfig,  # noqa: E402
                               TrainConfig)
from bench.schedule.grid import full_spec  # noqa: E402
from bench.train import Trainer  # noqa: E402

PENALTY_TERM = {"historical_averaging": "hist", "weight_penalty": "l2", "path_length": "pl"}
# params held fixed while sweeping (`--fixed trick.param=value` adds more)
FIXED_PARAMS: dict[str, dict] = {}


def ring8_cell(trick: str, params: dict, *, steps: int, seed: int = 0, batch_size: int = 256,
               width: int = 128, lr: float = 1e-3) -> CellConfig:
    opt = OptimConfig(lr=lr, beta1=0.5)
    return CellConfig(data=DataConfig("ring8"), net=NetConfig(width=width, depth=3),
                      train=TrainConfig(steps=steps, batch_size=batch_size, g_optim=opt,
                                        d_optim=opt, log_every=50, checkpoint_every=0),
                      tricks=(full_spec(trick, params),), seed=seed)


def gradient_ratios(cell: CellConfig, term: str, every: int = 10) -> dict[str, list[float]]:
    """{"d": [...], "g": [...]}: r at every `every`-th step (steps where the penalty is exactly
    zero, e.g. historical averaging's first update, are skipped). A lazy regulariser's own update
    (StyleGAN2: every N steps, loss N x penalty, no adversarial term) is compared with the
    adversarial gradient of the same net's update just before it."""
    tr = Trainer(cell, device="cpu", progress=False)
    ratios: dict[str, list[float]] = {"d": [], "g": []}
    last_adv: dict[str, float] = {}
    update = tr._update

    def measured(opt, loss, terms):
        phase = "d" if opt is tr.d_opt else "g"
        adv, pen = terms.get(f"{phase}_adv"), terms.get(f"{phase}_{term}")
        params = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]

        def norm(t):
            grads = torch.autograd.grad(t, params, retain_graph=True, allow_unused=True)
            return torch.sqrt(sum((g * g).sum() for g in grads if g is not None)).item()

        lazy = adv is None and pen is not None and pen.requires_grad
        if lazy and phase in last_adv:
            p = norm(loss)  # the lazy update's whole loss: N x the penalty
            if p > 0:
                ratios[phase].append(p / last_adv[phase])
        elif tr.step % every == 0 and adv is not None:
            a = norm(adv)
            last_adv[phase] = a
            if pen is not None and pen.requires_grad:
                p = norm(pen)
                if p > 0 and a > 0:
                    ratios[phase].append(p / a)
        update(opt, loss, terms)

    tr._update = measured
    status, reason = tr.train()
    if status != "done":
        raise RuntimeError(f"{cell.label}: {status} {reason}")
    return ratios


def summary(values: list[float]) -> str:
    if not values:
        return "-"
    q = statistics.quantiles(values, n=10) if len(values) > 1 else values
    below = sum(v < 1 for v in values) / len(values)
    return f"median {statistics.median(values):.3g}, p90 {q[-1]:.3g}, r<1 on {below:.0%}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trick", choices=sorted(PENALTY_TERM))
    ap.add_argument("param", help="the weight parameter to sweep (weight, lam)")
    ap.add_argument("values", type=float, nargs="+")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fixed", action="append", default=[], metavar="PARAM=VALUE",
                    help="another param of the trick held at a value (e.g. interval=1)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    print(f"{args.trick} on ring8, {args.steps} steps, seed {args.seed}: "
          f"r = |grad penalty| / |grad adversarial| on the updated net")
    for value in args.values:
        fixed = dict(f.split("=", 1) for f in args.fixed)
        params = {**FIXED_PARAMS.get(args.trick, {}),
                  **{k: float(v) if "." in v or "e" in v else int(v) for k, v in fixed.items()},
                  args.param: value}
        cell = ring8_cell(args.trick, params, steps=args.steps, seed=args.seed)
        r = gradient_ratios(cell, PENALTY_TERM[args.trick], args.every)
        print(f"  {args.param}={value:g}: D {summary(r['d'])}; G {summary(r['g'])}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
