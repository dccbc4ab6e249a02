"""Least-squares adversarial loss (Mao et al. 2017, "Least Squares Generative Adversarial
Networks", eq. 2 with the 0-1 coding a = 0, b = 1, c = 1):

    L_D = 1/2 E[(D(x) - b)^2] + 1/2 E[(D(G(z)) - a)^2],    L_G = 1/2 E[(D(G(z)) - c)^2]

D's targets a and b are the loop's targets (0 and 1), so label smoothing and label flips still
act on them; `c` is G's target. D's raw output is used as is (no sigmoid), as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

from ganbench import Trick, register_trick


@register_trick
class LSGANLoss(Trick):
    name = "lsgan_loss"
    summary = "least-squares adversarial loss: D regresses real to 1 and fake to 0, G pushes fakes to c=1"
    source = "Mao et al. 2017"
    slots = ("adversarial_loss",)  # replaces the baseline loss; conflicts with WGAN-GP etc.
    applies_to = frozenset({"2d", "image"})
    version = 1  # bump when a change alters what it computes

    @dataclass(frozen=True)
    class Params:
        c: float = 1.0  # the value G wants D to output for fakes

    def adversarial_loss(self, ctx):
        if ctx.phase == "d":
            return 0.5 * ((ctx.d_real - ctx.real_t) ** 2).mean() + \
                0.5 * ((ctx.d_fake - ctx.fake_t) ** 2).mean()
        return 0.5 * ((ctx.d_fake - self.p.c) ** 2).mean()
