"""WGAN-GP: Wasserstein critic loss (no sigmoid: D's raw output is the critic value) with a
gradient penalty lambda * (||grad D(x_hat)|| - 1)^2 at random interpolates x_hat between real and
fake samples, 5 critic updates per G update and Adam(1e-4, betas (0, 0.9)).
Gulrajani et al. 2017, "Improved Training of Wasserstein GANs", Algorithm 1.

The paper's optimizer is part of the method and stays the default (`optimizer = "paper"`: lr,
beta1, beta2 below, for G and D). `optimizer = "cell"` keeps the cell's own LR and betas (the
cell's `g_optim` / `d_optim`, or an LR sweep's value), so a comparison with the baseline at the
same LR isolates the loss, penalty and critic steps from the LR change (on ring8 the grid's base
LR is 1e-3, ten times the paper's).

`setting = "toy"`: the authors' settings for 2-D data, from their toy script (igul222/
improved_wgan_training `gan_toy.py` @ fa66c57): `LAMBDA = .1 # Smaller lambda makes things
faster for toy tasks, but isn't necessary if you increase CRITIC_ITERS enough` (l.23),
`CRITIC_ITERS = 5` (l.25) and Adam(1e-4, beta1 0.5, beta2 0.9) for both nets (l.89-105; the
image scripts' beta1 is 0). It sets gp_weight 0.1 and beta1 0.5 where they are at the paper's
values (10, 0); other given values are kept, and the cell id records the values that ran. The
rest of that script is cell settings, not the trick's: G and D MLPs of 3 ReLU layers x 512
(`width = 512, depth = 3`; the suite's D uses LeakyReLU 0.2), a 2-d z (`z_dim = 2`), batch 256,
100,000 G iterations, data scaled to about unit std (ring radius 1.414, sigma 0.014; the
suite's ring8 and grid25 have the same sigma-to-spacing ratios at a smaller scale)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from bench.core.config import OPTIONAL
from tricks import Trick, register_trick


PAPER_GP_WEIGHT, PAPER_BETA1 = 10.0, 0.0  # the paper's Algorithm 1 (images)
TOY_GP_WEIGHT, TOY_BETA1 = 0.1, 0.5  # the authors' gan_toy.py (2-D data)


def interpolates(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    eps = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device)
    return (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)


def input_gradient(critic, x: torch.Tensor) -> torch.Tensor:
    """d critic(x) / dx per sample, flattened, kept in the graph so a penalty can train on it."""
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(1)


@register_trick
class WGANGP(Trick):
    name = "wgan_gp"
    summary = ("Wasserstein loss + gradient penalty at interpolates, 5 critic steps, Adam(1e-4, "
               "(0, .9)) (optimizer=cell: the cell's LR and betas; setting=toy: the authors' "
               "2-D lambda 0.1, beta1 0.5)")
    source = "Gulrajani et al. 2017"
    slots = ("adversarial_loss", "d_steps", "optimizer")
    excludes = {
        "label_smoothing": "a Wasserstein critic has no targets to smooth",
        "one_sided_label_smoothing": "a Wasserstein critic has no targets to smooth",
        "label_flip": "a Wasserstein critic has no targets to flip",
        "batch_norm": "the per-sample gradient penalty is invalid with batch norm in the critic "
                      "(Gulrajani et al. 2017, section 4)",
    }

    @dataclass(frozen=True)
    class Params:
        gp_weight: float = PAPER_GP_WEIGHT
        n_critic: int = 5
        lr: float = 1e-4
        beta1: float = PAPER_BETA1
        beta2: float = 0.9
        # added after cells were stored: enter the cell id only when not "paper"
        optimizer: Literal["paper", "cell"] = field(default="paper", metadata=OPTIONAL)
        setting: Literal["paper", "toy"] = field(default="paper", metadata=OPTIONAL)

        def __post_init__(self) -> None:
            if self.setting == "toy":  # the toy script's lambda and beta1 (gan_toy.py l.23, l.91)
                if self.gp_weight == PAPER_GP_WEIGHT:
                    object.__setattr__(self, "gp_weight", TOY_GP_WEIGHT)
                if self.beta1 == PAPER_BETA1:
                    object.__setattr__(self, "beta1", TOY_BETA1)

        def validate(self) -> None:
            if self.n_critic < 1 or self.gp_weight < 0 or self.lr <= 0:
                raise ValueError("need n_critic >= 1, gp_weight >= 0, lr > 0")


    def adversarial_loss(self, ctx):
        if ctx.phase == "d":
            return ctx.d_fake.mean() - ctx.d_real.mean()
        return -ctx.d_fake.mean()

    def penalty(self, ctx):
        if ctx.phase != "d":
            return {}
        grad = input_gradient(ctx.critic, interpolates(ctx.real_in, ctx.fake_in))
        return {"gp": self.p.gp_weight * ((grad.norm(dim=1) - 1) ** 2).mean()}

    def d_steps(self):
        return self.p.n_critic

    def step_cost(self) -> float:
        # n_critic D updates, each with a gradient penalty (a double backward), and one G update
        return (2 * self.p.n_critic + 1) / 2

    def optimizer(self, net, spec):
        if self.p.optimizer == "cell":
            return spec
        return type(spec)(lr=self.p.lr, beta1=self.p.beta1, beta2=self.p.beta2)
