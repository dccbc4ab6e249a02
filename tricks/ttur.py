"""Two time-scale update rule (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium"): D and G get separate learning rates, D's faster.

Version 3 (default `scheme = "slow_g"`): D keeps the cell's lr and G's is D's / `ratio`, so the
row compares "G slower than D" with a baseline whose D runs at the same rate. ratio = 4 as in
SAGAN (Zhang et al. 2019), whose code trains D at 4e-4 and G at 1e-4
(brain-research/self-attention-gan `model.py` l.38-41 @ ad9612e; heykeetae/Self-Attention-GAN
`parameter.py` l.26-27 @ 8714a54). TTUR's own code uses ratio 3 (bioinf-jku/TTUR @ 73ab375,
`WGAN_GP/gan_64x64_FID.py` l.46-47 and `WGAN_GP/gan_language_JSD.py` l.34-35: D 3e-4, G 1e-4)
and 1.5 for BEGAN (`BEGAN_FID_batched/sh/run.sh`: D 6e-5, G 4e-5); `ratio = 3` gives TTUR's.

`scheme = "geometric"` is version 2's rule: D's lr = base * sqrt(ratio), G's = base /
sqrt(ratio), their geometric mean at the base; it mixes "D faster than G" with "D faster than
the baseline's D" (at ratio 4, D runs at 2x the cell's lr). Each net's base is its own
optimizer spec's lr (the cell's `g_optim` / `d_optim`, or `d_lr` / `g_lr`); Adam's betas are
kept. Version 1 set the absolute SAGAN values.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from tricks import Trick, register_trick


@register_trick
class TTUR(Trick):
    name = "ttur"
    summary = ("two time-scale update rule: D at the cell's lr, G's lr = D's / ratio, ratio 4 "
               "(SAGAN; scheme=geometric: v2's D*sqrt(ratio), G/sqrt(ratio))")
    source = "Heusel et al. 2017; ratio as in Zhang et al. 2019 (SAGAN)"
    slots = ("optimizer",)
    # v1: absolute D 4e-4, G 1e-4; v2: geometric mean at the base (now scheme="geometric")
    version = 3

    @dataclass(frozen=True)
    class Params:
        ratio: float = 4.0
        scheme: Literal["slow_g", "geometric"] = "slow_g"

        def validate(self) -> None:
            if not self.ratio > 0 or not math.isfinite(self.ratio):
                raise ValueError("ratio must be a finite number > 0")

    def optimizer(self, net, spec):
        if self.p.scheme == "slow_g":
            return spec if net == "D" else dataclasses.replace(spec, lr=spec.lr / self.p.ratio)
        scale = math.sqrt(self.p.ratio)
        return dataclasses.replace(spec, lr=spec.lr * scale if net == "D" else spec.lr / scale)
