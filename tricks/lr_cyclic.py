"""Triangular cyclical learning rate (Smith 2017, "Cyclical Learning Rates for Training Neural
Networks", the `triangular` policy): both nets' learning-rate multipliers go linearly from `low`
up to `high` over `step_size` steps and back down, repeatedly:
    cycle = floor(1 + step / (2 step_size)),  x = |step / step_size - 2 cycle + 1|,
    scale = low + (high - low) * max(0, 1 - x).
The cell's learning rate is the top of the range (high = 1): the tuned LR is never exceeded, and
low = 0.25 gives Smith's recommended max/min ratio of 3-4. step_size is `step_size` if given,
else budget / (2 * cycles) so the run holds `cycles` whole cycles (Smith: end on a cycle end).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from tricks import register_trick
from tricks._lib.schedules import BudgetSchedule


@register_trick
class LRCyclic(BudgetSchedule):
    name = "lr_cyclic"
    summary = "triangular cyclical LR between 0.25x and 1x of the base LR, 4 cycles per run"
    source = "Smith 2017"

    @dataclass(frozen=True)
    class Params:
        low: float = 0.25
        high: float = 1.0
        cycles: int = 4  # whole cycles per run (used when step_size is not set)
        step_size: Optional[int] = None  # steps per half cycle

        def validate(self) -> None:
            if not 0.0 < self.low <= self.high:
                raise ValueError("need 0 < low <= high")
            if self.cycles < 1 or (self.step_size is not None and self.step_size < 1):
                raise ValueError("need cycles >= 1 and step_size >= 1")

    def _scale(self, step):
        size = self.p.step_size or max(1, round(self._steps / (2 * self.p.cycles)))
        cycle = math.floor(1 + step / (2 * size))
        x = abs(step / size - 2 * cycle + 1)
        return self.p.low + (self.p.high - self.p.low) * max(0.0, 1.0 - x)
