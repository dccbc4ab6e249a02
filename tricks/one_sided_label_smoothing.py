"""One-sided label smoothing: only D's targets for real samples are lowered (1 -> 0.9);
fake targets stay 0, so D is not rewarded for placing mass where there is no data.
Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.4."""
from __future__ import annotations

from dataclasses import dataclass

from tricks import Trick, register_trick
from tricks.label_smoothing import smooth


@register_trick
class OneSidedLabelSmoothing(Trick):
    name = "one_sided_label_smoothing"
    summary = "one-sided label smoothing: D's real targets 1 -> 0.9, fake targets stay 0"
    source = "Salimans et al. 2016"
    excludes = {"label_smoothing": "both set D's target values; use one of them"}

    @dataclass(frozen=True)
    class Params:
        real: float = 0.9

        def validate(self) -> None:
            if not 0.0 < self.real <= 1.0:
                raise ValueError("need 0 < real <= 1")

    def targets(self, real_t, fake_t, step):
        return smooth(real_t, self.p.real, 0.0), smooth(fake_t, self.p.real, 0.0)
