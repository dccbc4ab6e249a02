"""The baseline adversarial losses (Goodfellow et al. 2014), BCE on D's logits. Tricks that claim
the `adversarial_loss` slot replace them; a cell's `train.g_loss` picks which one G uses
otherwise:

- "non_saturating" (default): G minimises -log D(G(z)), the form the paper recommends in
  practice and every trick list assumes.
- "minimax": G minimises log(1 - D(G(z))), i.e. maximises D's loss on fakes, the game's value
  function (eq. 1). Its gradient vanishes when D confidently rejects the fakes. The 2-D
  reference notebook of Metz et al. 2017 (poolio/unrolled_gan) trains G this way
  (`-loss`), so a comparison with that code can match it.

D's loss is the same for both."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from bench.trickapi.trick import StepContext


def _d_loss(ctx: StepContext) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(ctx.d_real, ctx.real_t)
            + F.binary_cross_entropy_with_logits(ctx.d_fake, ctx.fake_t))


def non_saturating_loss(ctx: StepContext) -> torch.Tensor:
    if ctx.phase == "d":
        return _d_loss(ctx)
    return F.binary_cross_entropy_with_logits(ctx.d_fake, torch.ones_like(ctx.d_fake))


def minimax_loss(ctx: StepContext) -> torch.Tensor:
    if ctx.phase == "d":
        return _d_loss(ctx)
    # -BCE(d_fake, 0) = log(1 - sigmoid(d_fake)); the fake label is the game's 0 whatever target
    # tricks (label smoothing, flips) give D, as G's label is the plain 1 in the NS loss
    return -F.binary_cross_entropy_with_logits(ctx.d_fake, torch.zeros_like(ctx.d_fake))


G_LOSSES: dict[str, Callable[[StepContext], torch.Tensor]] = {
    "non_saturating": non_saturating_loss, "minimax": minimax_loss}
