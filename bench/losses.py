"""The baseline adversarial loss: non-saturating GAN with BCE on D's logits (Goodfellow 2014).
Tricks that claim the `adversarial_loss` slot replace it."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from bench.trick import StepContext


def non_saturating_loss(ctx: StepContext) -> torch.Tensor:
    if ctx.phase == "d":
        return (F.binary_cross_entropy_with_logits(ctx.d_real, ctx.real_t)
                + F.binary_cross_entropy_with_logits(ctx.d_fake, ctx.fake_t))
    return F.binary_cross_entropy_with_logits(ctx.d_fake, torch.ones_like(ctx.d_fake))
