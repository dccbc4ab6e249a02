"""Instance noise: Gaussian noise added to both D inputs (real and fake, in both phases), with
sigma annealed linearly from 0.1 to 0 over the run, so the two distributions overlap early on.
Sønderby et al. 2017 ("Amortised MAP Inference for Image Super-resolution"), Arjovsky & Bottou
2017. Option `fraction` noises only that share of each batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from tricks import Trick, register_trick


@register_trick
class InstanceNoise(Trick):
    name = "instance_noise"
    summary = "Gaussian noise on D's inputs, sigma annealed 0.1 -> 0 over the run"
    source = "Sønderby et al. 2017; Arjovsky & Bottou 2017"

    @dataclass(frozen=True)
    class Params:
        sigma: float = 0.1
        anneal: Literal["linear", "none"] = "linear"
        fraction: float = 1.0  # share of each batch that is noised

        def validate(self) -> None:
            if self.sigma < 0 or not 0.0 < self.fraction <= 1.0:
                raise ValueError("need sigma >= 0 and 0 < fraction <= 1")

    def __init__(self, params=None):
        super().__init__(params)
        self._steps = 1

    def build(self, nets, ctx):
        self._steps = ctx.steps
        return nets

    def sigma_at(self, step: int) -> float:
        if self.p.anneal == "none":
            return self.p.sigma
        return self.p.sigma * max(0.0, 1.0 - step / max(self._steps - 1, 1))

    def d_input(self, x, is_real, step):
        sigma = self.sigma_at(step)
        if sigma == 0.0:
            return x
        noise = sigma * torch.randn_like(x)
        if self.p.fraction < 1.0:
            keep = torch.rand(x.shape[0], device=x.device) < self.p.fraction
            noise = noise * keep.view(-1, *([1] * (x.dim() - 1)))
        return x + noise
