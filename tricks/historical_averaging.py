"""Historical averaging (Salimans et al. 2016, "Improved Techniques for Training GANs", section
3.3): each player's loss gets weight * ||theta - (1/t) sum_{i<=t} theta[i]||^2, the squared
distance of its parameters from their historical mean, which damps the oscillations of
gradient descent in games. D is penalised in the D phase and G in the G phase.

The historical mean is of the parameter values at the previous updates of that net: at each
update the penalty is computed against the mean, then the current (pre-update) values are added
to it, so the first update carries a zero penalty. The mean is trick state (checkpointed).
An unrolled copy of D (`ctx.critic is not ctx.nets.D`) is penalised against D's mean without
adding to it. weight = 1.0: the paper gives none; 1.0 is TorchGAN's default for its
HistoricalAverage losses, the common reference implementation. Logged as `d_hist` / `g_hist`.
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
    summary = "penalise D's and G's distance from their historical parameter mean (weight 1)"
    source = "Salimans et al. 2016"

    @dataclass(frozen=True)
    class Params:
        weight: float = 1.0
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
