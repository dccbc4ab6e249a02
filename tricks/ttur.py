"""Two time-scale update rule (Heusel et al. 2017, "GANs Trained by a Two Time-Scale Update Rule
Converge to a Local Nash Equilibrium"): D and G get separate learning rates, D's faster.
D 4e-4, G 1e-4 are the values used by SAGAN (Zhang et al. 2019), the usual
reading of TTUR; Adam's betas are kept from the cell's optimizer spec.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from tricks import Trick, register_trick


@register_trick
class TTUR(Trick):
    name = "ttur"
    summary = "two time-scale update rule: D lr 4e-4, G lr 1e-4 (betas unchanged)"
    source = "Heusel et al. 2017; values as in Zhang et al. 2019 (SAGAN)"
    slots = ("optimizer",)

    @dataclass(frozen=True)
    class Params:
        d_lr: float = 4e-4
        g_lr: float = 1e-4

        def validate(self) -> None:
            if self.d_lr <= 0 or self.g_lr <= 0:
                raise ValueError("learning rates must be > 0")

    def optimizer(self, net, spec):
        return dataclasses.replace(spec, lr=self.p.d_lr if net == "D" else self.p.g_lr)
