"""L2 penalty on D's weights in D's loss: lam * sum ||W||^2 over D's weight tensors (conv/linear
kernels: parameters with 2+ dims; biases and 1-D norm gains only with `include_biases`).
Classic L2 weight regularisation (Krogh & Hertz 1992, "A Simple Weight Decay Can Improve
Generalization") applied to the discriminator only; no GAN paper fixes a default. The penalty
acts on the raw weight tensors (e.g. spectral norm's un-normalised original).

lam = 0.001 (version 2; version 1 used 0.01, which gave 0 modes on every ring8 seed). Calibrated
so the penalty does not swamp the adversarial signal: r = ||grad penalty|| / ||grad adversarial
loss|| on D, every 10th step of a ring8 cell at the cpu-default settings (batch 256, Adam(1e-3,
0.5), MLP 3x128, 2,000 steps, seed 0), median (90th percentile) over the run:

    lam      D
    0.01     134   (1,330)     D's weights collapse, the adversarial gradient vanishes (v1)
    0.003    100   (4e9)       the same collapse
    0.001    0.0095 (0.032)    seed 1: 0.027 (0.072)
    0.0001   0.0043 (0.0095)
    0.00001  0.00012 (0.00039)

made by `.venv/bin/python benchmarks/penalty_ratio.py weight_penalty lam 0.01 0.003 0.001 0.0001
0.00001` (measured under load; ratios, not timings). 0.001 is the largest of these that does not
dominate; the collapse sets in between 0.001 and 0.003 on ring8, so a sweep above 0.001 should
expect it. On digits 16 px (cpu-default, 1,000 steps) 0.001 gives 0.010 (0.015) and 0.003 still
0.026 (0.037).
`tests/test_calibration.py` checks a short tiny run (bounds: median < 0.25, 90th percentile < 1).
Computed on `critic` (so an unrolled copy of D is penalised like D). Logged as `d_l2`.
Being part of the loss, its gradient goes through Adam's normalisation (coupled L2, not AdamW).
"""
from __future__ import annotations

from dataclasses import dataclass

from tricks import Trick, register_trick


@register_trick
class WeightPenalty(Trick):
    name = "weight_penalty"
    summary = ("L2 penalty lam * sum W^2 on D's weights (lam 0.001, calibrated: its gradient ~1-3% "
               "of the adversarial one)")
    source = "Krogh & Hertz 1992 (L2 weight decay), on D only"
    version = 2  # v1: lam 0.01, which collapsed D's weights on ring8

    @dataclass(frozen=True)
    class Params:
        lam: float = 0.001
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
