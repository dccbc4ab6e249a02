"""Two-sided label smoothing: D's targets for real become 0.9 and for fake 0.1.

Szegedy et al. 2016 ("Rethinking the Inception Architecture"), applied to both of D's classes
as listed in ganhacks; Salimans et al. 2016 recommend smoothing only the real side (see
`one_sided_label_smoothing`). G's own targets are left alone.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tricks import Trick, register_trick


def smooth(t: torch.Tensor, real: float, fake: float) -> torch.Tensor:
    """The affine map 1 -> real, 0 -> fake (exact at 0 and 1), so it composes with label flips."""
    return t * real + (1 - t) * fake


@register_trick
class LabelSmoothing(Trick):
    name = "label_smoothing"
    summary = "two-sided label smoothing of D's targets (real 0.9, fake 0.1)"
    source = "Szegedy et al. 2016; ganhacks"
    excludes = {"one_sided_label_smoothing": "both set D's target values; use one of them"}

    @dataclass(frozen=True)
    class Params:
        real: float = 0.9
        fake: float = 0.1

        def validate(self) -> None:
            if not 0.0 <= self.fake < self.real <= 1.0:
                raise ValueError("need 0 <= fake < real <= 1")

    def targets(self, real_t, fake_t, step):
        return smooth(real_t, self.p.real, self.p.fake), smooth(fake_t, self.p.real, self.p.fake)
