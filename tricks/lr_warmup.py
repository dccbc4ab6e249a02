"""Linear learning-rate warm-up (Goyal et al. 2017, "Accurate, Large Minibatch SGD: Training
ImageNet in 1 Hour"): both nets' learning rates ramp linearly from base/W to base over the first
W steps, scale(step) = min(1, (step + 1) / W), then stay at the base value.
W = `warmup_steps` if given, else round(`fraction` * budget); fraction 0.05 is the 5-epoch share
of Goyal et al.'s 90-epoch schedule, rounded.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tricks import register_trick
from tricks._lib.schedules import BudgetSchedule, budget_steps


@register_trick
class LRWarmup(BudgetSchedule):
    name = "lr_warmup"
    summary = "linear LR warm-up over the first 5% of the run"
    source = "Goyal et al. 2017"

    @dataclass(frozen=True)
    class Params:
        fraction: float = 0.05  # of the step budget
        warmup_steps: Optional[int] = None  # overrides fraction

        def validate(self) -> None:
            if not 0.0 <= self.fraction <= 1.0:
                raise ValueError("fraction must be in [0, 1]")
            if self.warmup_steps is not None and self.warmup_steps < 0:
                raise ValueError("warmup_steps must be >= 0")

    def _scale(self, step):
        w = budget_steps(self.p.fraction, self.p.warmup_steps, self._steps)
        return 1.0 if w <= 0 else min(1.0, (step + 1) / w)
