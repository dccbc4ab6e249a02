"""Two time-scale update rule (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium"): D and G get separate learning rates, D's faster.

Relative to the cell's base LR (version 2): D's lr = base * sqrt(ratio), G's lr = base /
sqrt(ratio), so D/G = `ratio` and the geometric mean of the two stays at the base LR; the cell
then tests "D faster than G" rather than "a lower LR". ratio = 4 as in SAGAN (Zhang et al. 2019:
D 4e-4, G 1e-4), the usual reading of TTUR. Each net's base is its own optimizer spec's lr (the
cell's `g_optim` / `d_optim`, equal in every preset); Adam's betas are kept. Version 1 set the
absolute SAGAN values, so on ring8 (base 1e-3) it mostly lowered both LRs.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from tricks import Trick, register_trick


@register_trick
class TTUR(Trick):
    name = "ttur"
    summary = ("two time-scale update rule: D lr = base*sqrt(ratio), G lr = base/sqrt(ratio), "
               "ratio 4 (betas unchanged)")
    source = "Heusel et al. 2017; ratio as in Zhang et al. 2019 (SAGAN)"
    slots = ("optimizer",)
    version = 2  # v1: absolute D 4e-4, G 1e-4

    @dataclass(frozen=True)
    class Params:
        ratio: float = 4.0

        def validate(self) -> None:
            if not self.ratio > 0 or not math.isfinite(self.ratio):
                raise ValueError("ratio must be a finite number > 0")

    def optimizer(self, net, spec):
        scale = math.sqrt(self.p.ratio)
        return dataclasses.replace(spec, lr=spec.lr * scale if net == "D" else spec.lr / scale)
