"""Historical averaging (Salimans et al. 2016, "Improved Techniques for Training GANs", section
3.3): each player's loss gets weight * ||theta - (1/t) sum_{i<=t} theta[i]||^2, the squared
distance of its parameters from their historical mean, which damps the oscillations of
gradient descent in games. D is penalised in the D phase and G in the G phase.

The historical mean is of the parameter values at the previous updates of that net: at each
update the penalty is computed against the mean, then the current (pre-update) values are added
to it, so the first update carries a zero penalty. The mean is trick state (checkpointed).
An unrolled copy of D (`ctx.critic is not ctx.nets.D`) is penalised against D's mean without
adding to it. Logged as `d_hist` / `g_hist`.

weight = 0.01 (version 2; version 1 used 1.0). The paper gives no weight; TorchGAN's
HistoricalAverage losses default to 1.0. Calibrated so the penalty does not swamp the adversarial
signal: r = ||grad penalty|| / ||grad adversarial loss|| of the net being updated, every 10th step
of a ring8 cell at the cpu-default settings (batch 256, Adam(1e-3, 0.5), MLP 3x128, 2,000 steps,
seed 0), median (90th percentile) over the run:

    weight   D               G
    1        4.1   (4.8)     381   (709)     all three ring8 seeds ended with 0 modes (v1 default)
    0.1      0.65  (0.71)    9.9   (20)
    0.03     0.17  (0.30)    0.11  (0.26)
    0.01     0.048 (0.092)   0.040 (0.11)    seed 1: 0.072 (0.13) / 0.055 (0.16)
    0.001    0.011 (0.021)   0.012 (0.047)

made by `.venv/bin/python benchmarks/penalty_ratio.py historical_averaging weight 1 0.1 0.03 0.01
0.001` (measured under load; ratios, not timings). 0.01 is the largest weight with 10x margin to
the regime where G's penalty dominates (0.1); on digits 16 px (cpu-default, 1,000 steps) it gives
D 0.045 (0.068), G 0.076 (0.13).
`tests/test_calibration.py` checks a short tiny run (bounds: median < 0.25, 90th percentile < 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from tricks import Trick, register_trick


class _Mean:
    """Running mean of a module's named parameters."""

    def __init__(self):
        self.count = 0
        self.mean: dict[str, torch.Tensor] = {}

    def distance(self, module: torch.nn.Module) -> torch.Tensor:
        params = dict(module.named_parameters())
        if self.count == 0:
            return sum(p.sum() * 0.0 for p in params.values())
        return sum((params[k] - m).square().sum() for k, m in self.mean.items())

    def add(self, module: torch.nn.Module) -> None:
        self.count += 1
        for k, p in module.named_parameters():
            v = p.detach()
            if k not in self.mean:
                self.mean[k] = v.clone()
            else:
                self.mean[k] = self.mean[k] + (v - self.mean[k]) / self.count  # new tensor

    def state(self) -> dict:
        return {"count": self.count, "mean": {k: v.clone() for k, v in self.mean.items()}}

    def load(self, state: dict) -> None:
        self.count = int(state.get("count", 0))
        self.mean = {k: v.clone() for k, v in state.get("mean", {}).items()}


@register_trick
class HistoricalAveraging(Trick):
    name = "historical_averaging"
    summary = ("penalise D's and G's distance from their historical parameter mean (weight 0.01, "
               "calibrated: its gradient ~5% of the adversarial one)")
    source = "Salimans et al. 2016"
    version = 2  # v1: weight 1.0, whose gradient swamped the adversarial one

    @dataclass(frozen=True)
    class Params:
        weight: float = 0.01
        nets: Literal["both", "D", "G"] = "both"

        def validate(self) -> None:
            if self.weight < 0:
                raise ValueError("weight must be >= 0")

    def __init__(self, params=None):
        super().__init__(params)
        self._means = {"D": _Mean(), "G": _Mean()}

    def penalty(self, ctx):
        net = ctx.phase.upper()
        if self.p.nets not in ("both", net):
            return {}
        mean = self._means[net]
        module = ctx.critic if net == "D" else ctx.nets.G
        value = self.p.weight * mean.distance(module)
        if net == "G" or ctx.critic is ctx.nets.D:  # not for an unrolled copy of D
            mean.add(module)
        return {"hist": value}

    def state_dict(self):
        return {net: m.state() for net, m in self._means.items()}

    def load_state_dict(self, state):
        for net, m in self._means.items():
            m.load(state.get(net, {}))
