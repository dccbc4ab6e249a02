"""D2GAN: two discriminators with positive outputs, D1 rewarding real data and D2 rewarding
generated data, combining the KL and reverse-KL divergences against mode collapse.
Nguyen et al. 2017, "Dual Discriminator Generative Adversarial Nets", eq. (1):

    min_G max_{D1,D2}  alpha E_x[log D1(x)] - E_z[D1(G(z))] - E_x[D2(x)] + beta E_z[log D2(G(z))]

so D minimises -alpha E[log D1(x)] + E[D1(G(z))] + E[D2(x)] - beta E[log D2(G(z))] and G minimises
-E[D1(G(z))] + beta E[log D2(G(z))] (the terms without G dropped), with D1, D2 the softplus of
the two raw outputs. alpha = 0.2, beta = 0.1 as reported for the paper's experiments (the
authors' released 2-D script, tund/D2GAN, defaults to alpha = beta = 1).

Build (WRAP order, after every other net change): D becomes `DualDiscriminator`, returning raw
outputs [B, 2] (column 0: D1, column 1: D2; the softplus is applied in the loss). D1 is the
finished D (with every layer and reparametrization other tricks added); D2 is a deep copy of it
whose every parameter is re-drawn (`_lib.layers.reinitialize`): i.i.d. Gaussian values with the
mean and standard deviation of that parameter tensor's initial values (under spectral norm: of its
unnormalised weight, then fresh power-iteration vectors). So N(0, 0.02) DCGAN weights are re-drawn
from N(0, 0.02), zero biases and unit gains stay, and other architectures' init scales carry over:
two independently initialised copies of the same architecture. `D.features(x)` and `D.blocks`
are D1's (feature matching reads D1's features).

log softplus(t) is computed stably as log(softplus(t)) for t >= -15 and as t below (where
log softplus(t) = t + log(1 - e^t/2 + ...) = t to within 2e-7), so D1 -> 0 or D2 -> 0 gives a
large finite value with gradient 1 instead of -inf/NaN; no epsilon is added.

Capacity: D has twice the baseline's parameters (digits 16 px: 34,305 -> 68,610; 32 px width 64:
662,529 -> 1,325,058); G is unchanged. There is no matched option: two full discriminators are
the method, and D1 is the finished D of the cell (with the layers other tricks inserted), which
this trick wraps after every other build; halving each would mean building a narrower D before
other tricks act on it. Compare against a baseline with a wider D (`net.width`) to separate the
two effects.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.trickapi.trick import WRAP, TrickError
from tricks import Trick, register_trick
from tricks._lib.layers import reinitialize

_LOG_SP_SWITCH = -15.0


def log_softplus(t: torch.Tensor) -> torch.Tensor:
    """log(softplus(t)), finite with a finite gradient for every finite t."""
    low = t < _LOG_SP_SWITCH
    safe = torch.where(low, torch.zeros_like(t), t)  # keep the unused branch away from log(0)
    return torch.where(low, t, torch.log(F.softplus(safe)))


class DualDiscriminator(nn.Module):
    """D(x) = [D1(x), D2(x)] as a [B, 2] tensor of raw (pre-softplus) outputs."""

    def __init__(self, d1: nn.Module, d2: nn.Module):
        super().__init__()
        self.d1, self.d2 = d1, d2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.d1(x), self.d2(x)
        if a.dim() != 1 or b.dim() != 1:
            raise RuntimeError("dual_discriminator needs a D with one output per sample")
        return torch.stack([a, b], dim=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.d1.features(x)

    @property
    def blocks(self) -> nn.ModuleList:
        return self.d1.blocks

    @property
    def feature_channels(self) -> int:
        return self.d1.feature_channels


@register_trick
class DualDiscriminatorTrick(Trick):
    name = "dual_discriminator"
    summary = ("D2GAN: two softplus discriminators (KL + reverse KL), alpha=0.2, beta=0.1; "
               "D has 2x the baseline's parameters (no matched option: two Ds are the method)")
    source = "Nguyen et al. 2017"
    slots = ("adversarial_loss",)
    build_order = WRAP
    excludes = {
        "label_smoothing": "D2GAN's losses use D1/D2 values directly, not BCE targets to smooth",
        "one_sided_label_smoothing": "D2GAN's losses use D1/D2 values directly, not BCE targets "
                                     "to smooth",
        "label_flip": "D2GAN's losses use D1/D2 values directly, not BCE targets to flip",
    }

    @dataclass(frozen=True)
    class Params:
        alpha: float = 0.2
        beta: float = 0.1

        def validate(self) -> None:
            if self.alpha <= 0 or self.beta <= 0:
                raise ValueError("alpha and beta must be > 0")

    def step_cost(self) -> float:
        # two Ds: two D updates, and G's update goes through both
        return 2.0

    def build(self, nets, ctx):
        d1 = nets.D
        if not hasattr(d1, "features"):
            raise TrickError(f"{self.name} needs a D with `features`")
        d2 = copy.deepcopy(d1)
        reinitialize(d2)
        return type(nets)(nets.G, DualDiscriminator(d1, d2))

    @staticmethod
    def _split(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if out.dim() != 2 or out.shape[1] != 2:
            raise TrickError(f"dual_discriminator expects critic outputs [B, 2], got "
                             f"{tuple(out.shape)}")
        return out[:, 0], out[:, 1]

    def adversarial_loss(self, ctx):
        a, b = self.p.alpha, self.p.beta
        d1_fake, d2_fake = self._split(ctx.d_fake)
        if ctx.phase == "d":
            d1_real, d2_real = self._split(ctx.d_real)
            return (-a * log_softplus(d1_real).mean() + F.softplus(d1_fake).mean()
                    + F.softplus(d2_real).mean() - b * log_softplus(d2_fake).mean())
        return -F.softplus(d1_fake).mean() + b * log_softplus(d2_fake).mean()
