"""L2 penalty on D's weights in D's loss: lam * sum ||W||^2 over D's weight tensors (conv/linear
kernels: parameters with 2+ dims; biases and 1-D norm gains only with `include_biases`).
Classic L2 weight regularisation (Krogh & Hertz 1992, "A Simple Weight Decay Can Improve
Generalization") applied to the discriminator only. lam = 0.01 is this benchmark's choice (no GAN
paper fixes a default); the penalty acts on the raw weight tensors (e.g. spectral norm's
un-normalised original).
Computed on `critic` (so an unrolled copy of D is penalised like D). Logged as `d_l2`.
Being part of the loss, its gradient goes through Adam's normalisation (coupled L2, not AdamW).
"""
from __future__ import annotations

from dataclasses import dataclass

from tricks import Trick, register_trick


@register_trick
class WeightPenalty(Trick):
    name = "weight_penalty"
    summary = "L2 penalty lam * sum W^2 on D's weights (lam 0.01)"
    source = "Krogh & Hertz 1992 (L2 weight decay), on D only"

    @dataclass(frozen=True)
    class Params:
        lam: float = 0.01
        include_biases: bool = False

        def validate(self) -> None:
            if self.lam < 0:
                raise ValueError("lam must be >= 0")

    def penalty(self, ctx):
        if ctx.phase != "d":
            return {}
        params = [p for p in ctx.critic.parameters()
                  if self.p.include_biases or p.dim() > 1]
        return {"l2": self.p.lam * sum(p.square().sum() for p in params)}
