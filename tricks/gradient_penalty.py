"""Gradient penalties on D around the real data, added to D's loss.

`variant="r1"`: the zero-centred R1 penalty (gamma/2) * E||grad D(x)||^2 on real data
(Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?", gamma = 10).
`variant="dragan"`: DRAGAN (Kodali et al. 2017, "On Convergence and Stability of GANs"),
lambda * E(||grad D(x~)|| - 1)^2 with lambda = 10 at points near the real data: as in the authors'
reference code, x_p = x + 0.5 * std(x) * U[0,1] (elementwise noise, std over the whole batch) and
x~ = x + alpha * (x_p - x) with alpha ~ U[0,1] per sample.
`interval` > 1 is lazy regularisation as StyleGAN2 does it (Karras et al. 2020, section 3.1 and
the official `training_loop.py`): the penalty is its own D update every `interval` steps, on its
own real minibatch, its loss multiplied by `interval`, and D's Adam lr and betas are corrected by
c = interval / (interval + 1) for the whole run (lr*c, beta**c); the loop does the update and
the correction (hooks `lazy_interval` and `lazy_penalty`). StyleGAN2 uses 16. Steps are G steps:
with n D updates per step (WGAN-GP's critic) the regulariser runs once per `interval` of them,
after the step's n main D updates. With `interval` 1
the penalty is added into every D update's loss. Logged as `d_r1` or `d_dragan` (unscaled).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from tricks import Trick, register_trick
from tricks._lib.penalties import squared_input_gradient
from tricks.wgan_gp import input_gradient


def dragan_points(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Random points between x and x + scale * std(x) * U[0,1] (DRAGAN's perturbed reals)."""
    x = x.detach()
    perturbed = x + scale * x.std() * torch.rand_like(x)
    alpha = torch.rand(x.shape[0], *([1] * (x.dim() - 1)), device=x.device)
    return (x + alpha * (perturbed - x)).requires_grad_(True)


@register_trick
class GradientPenalty(Trick):
    name = "gradient_penalty"
    summary = "R1 zero-centred gradient penalty on real data (gamma 10), or DRAGAN; optional lazy interval"
    version = 2  # 2: interval > 1 is a separate update with Adam's correction (StyleGAN2)
    source = "Mescheder et al. 2018 (R1); Kodali et al. 2017 (DRAGAN); Karras et al. 2020 (lazy)"
    excludes = {
        "relativistic": "it already applies zero-centred R1 and R2 penalties (its gamma)",
        "batch_norm": "a per-sample gradient penalty is invalid with batch norm in D "
                      "(as for WGAN-GP, Gulrajani et al. 2017, section 4)",
    }

    @dataclass(frozen=True)
    class Params:
        variant: Literal["r1", "dragan"] = "r1"
        weight: float = 10.0  # R1's gamma or DRAGAN's lambda (both 10 in the papers)
        interval: int = 1  # lazy regularisation: every `interval` steps, scaled by `interval`
        perturb: float = 0.5  # DRAGAN's noise scale in units of std(x)

        def validate(self) -> None:
            if self.weight < 0 or self.interval < 1 or self.perturb <= 0:
                raise ValueError("need weight >= 0, interval >= 1, perturb > 0")

    def step_cost(self) -> float:
        # a double backward through D every `interval` steps
        return (2 + 1 / self.p.interval) / 2

    def _terms(self, ctx) -> dict:
        if self.p.variant == "r1":
            return {"r1": self.p.weight / 2 * squared_input_gradient(ctx.critic, ctx.real_in)}
        grad = input_gradient(ctx.critic, dragan_points(ctx.real_in, self.p.perturb))
        return {"dragan": self.p.weight * ((grad.norm(dim=1) - 1) ** 2).mean()}

    def penalty(self, ctx):
        if ctx.phase != "d" or self.p.interval > 1:
            return {}
        return self._terms(ctx)

    def lazy_interval(self, net):
        return self.p.interval if net == "D" else 1

    def lazy_penalty(self, ctx):
        return self._terms(ctx) if ctx.phase == "d" else {}
