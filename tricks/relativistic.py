"""Relativistic GAN loss with zero-centred gradient penalties on real AND fake data.

`variant="pairing"` is RpGAN as used by R3GAN (Huang et al. 2024, "The GAN is dead; long live the
GAN! A Modern GAN Baseline"): each real sample is paired with a fake one and D is trained on the
difference of their logits,
    L_D = E[softplus(-(D(x_r) - D(x_f)))],   L_G = E[softplus(-(D(x_f) - D(x_r)))],
plus (gamma/2) * (R1 + R2) on D, R1 = E||grad D(x_r)||^2, R2 = E||grad D(x_f)||^2 (the "R3" of
R3GAN: the penalties are what make RpGAN locally convergent).
`variant="average"` is RaGAN (Jolicoeur-Martineau 2018, "The relativistic discriminator"): each
logit is compared with the batch mean of the other side,
    L_D = E[softplus(-(D(x_r) - E D(x_f)))] + E[softplus(D(x_f) - E D(x_r))],
    L_G = E[softplus(-(D(x_f) - E D(x_r)))] + E[softplus(D(x_r) - E D(x_f))]
(the paper's sum of two BCE terms, like the baseline's D loss; her reference code halves it).
The same R1 + R2 penalties apply; `gamma=0` switches them off.

gamma default 0.05: R3GAN's value for its smallest-scale setting (CIFAR-10 32 px; the official
presets use 0.05 for CIFAR-10, 0.5-2 for 32-64 px ImageNet/FFHQ, 150 for FFHQ-256, and anneal it
10x over training; our runs are too short for the anneal to matter, so it is not modelled).
Penalties are logged as `d_r1` and `d_r2` (already weighted).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch.nn.functional as F

from tricks import Trick, TrickError, register_trick
from tricks._lib.penalties import squared_input_gradient

_NO_TARGETS = "the relativistic loss compares D(real) with D(fake) and has no targets to {}"


@register_trick
class Relativistic(Trick):
    name = "relativistic"
    summary = "relativistic loss (RpGAN pairing or RaGAN average) with R1 + R2 penalties (gamma 0.05)"
    source = "Huang et al. 2024 (R3GAN); Jolicoeur-Martineau 2018 (RaGAN)"
    slots = ("adversarial_loss",)
    excludes = {
        "label_smoothing": _NO_TARGETS.format("smooth"),
        "one_sided_label_smoothing": _NO_TARGETS.format("smooth"),
        "label_flip": _NO_TARGETS.format("flip"),
        "batch_norm": "the per-sample R1/R2 gradient penalties are invalid with batch norm in D "
                      "(as for WGAN-GP, Gulrajani et al. 2017, section 4)",
    }

    @dataclass(frozen=True)
    class Params:
        variant: Literal["pairing", "average"] = "pairing"
        gamma: float = 0.05  # weight of (R1 + R2) / 2

        def validate(self) -> None:
            if self.gamma < 0:
                raise ValueError("gamma must be >= 0")

    def adversarial_loss(self, ctx):
        real, fake = ctx.d_real, ctx.d_fake  # d_real is computed lazily in the G phase
        if self.p.variant == "pairing":
            if real.shape != fake.shape:
                raise TrickError(f"relativistic pairing needs equal real/fake batches, got "
                                 f"{tuple(real.shape)} and {tuple(fake.shape)}")
            diff = real - fake if ctx.phase == "d" else fake - real
            return F.softplus(-diff).mean()
        real_rel, fake_rel = real - fake.mean(0), fake - real.mean(0)
        if ctx.phase == "d":
            return F.softplus(-real_rel).mean() + F.softplus(fake_rel).mean()
        return F.softplus(-fake_rel).mean() + F.softplus(real_rel).mean()

    def penalty(self, ctx):
        if ctx.phase != "d" or self.p.gamma == 0:
            return {}
        half = self.p.gamma / 2
        return {"r1": half * squared_input_gradient(ctx.critic, ctx.real_in),
                "r2": half * squared_input_gradient(ctx.critic, ctx.fake_in)}
