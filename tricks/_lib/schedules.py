"""Shared base for learning-rate schedule tricks: they claim the `lr_schedule` slot, read the
step budget in `build` and scale both nets' learning rates by a pure function of the step."""
from __future__ import annotations

from tricks import Trick


class BudgetSchedule(Trick):
    slots = ("lr_schedule",)

    def __init__(self, params=None):
        super().__init__(params)
        self._steps = 1  # the run's step budget, set in build

    def build(self, nets, ctx):
        self._steps = ctx.steps
        return nets

    def lr_scale(self, step, net):
        return self._scale(step)

    def _scale(self, step: int) -> float:
        raise NotImplementedError


def budget_steps(fraction: float, steps: int | None, budget: int) -> int:
    """An absolute step count: `steps` when given, else round(fraction * budget)."""
    return steps if steps is not None else int(round(fraction * budget))
