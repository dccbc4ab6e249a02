"""Step decay of the learning rate: both nets' learning rates are multiplied by `gamma` at each
milestone, scale(step) = gamma ** (number of milestones <= step). Milestones are either every
`every` steps or at `milestones`, comma-separated fractions of the step budget (rounded to
steps). Defaults follow He et al. 2016 ("Deep Residual Learning for Image Recognition", CIFAR-10:
divide by 10 at 32k and 48k of 64k iterations, i.e. at 50% and 75%).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from tricks import register_trick
from tricks._lib.schedules import BudgetSchedule


def parse_fractions(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise ValueError(f"milestones must be comma-separated numbers, got {text!r}") from None
    if not all(0.0 < v <= 1.0 for v in values):
        raise ValueError("milestones must be fractions of the budget in (0, 1]")
    return values


@register_trick
class LRStepDecay(BudgetSchedule):
    name = "lr_step_decay"
    summary = "LR x0.1 at 50% and 75% of the run (step decay)"
    source = "He et al. 2016"

    @dataclass(frozen=True)
    class Params:
        gamma: float = 0.1
        milestones: str = "0.5,0.75"  # fractions of the budget; ignored when `every` is set
        every: Optional[int] = None  # decay every this many steps instead

        def validate(self) -> None:
            if not 0.0 < self.gamma <= 1.0:
                raise ValueError("gamma must be in (0, 1]")
            if self.every is not None and self.every < 1:
                raise ValueError("every must be >= 1")
            parse_fractions(self.milestones)

    def _scale(self, step):
        if self.p.every is not None:
            n = step // self.p.every
        else:
            n = sum(step >= round(f * self._steps) for f in parse_fractions(self.p.milestones))
        return self.p.gamma ** n
