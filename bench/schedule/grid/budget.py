"""A grid's `budget` key: how many steps a cell trains when its tricks cost more per step than the
baseline ("steps": the same steps for all; "evals": the same network passes; "time": the same
calibrated time)."""
from __future__ import annotations

from bench.core.config import TrickSpec
from bench.trickapi.registry import create_trick

BUDGETS = ("steps", "evals", "time")


def step_cost(specs: tuple[TrickSpec, ...]) -> float:
    """Network passes per step of a cell's tricks relative to the baseline's (the product of
    each trick's `step_cost()`; a composite of tricks that each add passes is approximate)."""
    cost = 1.0
    for spec in specs:
        cost *= float(create_trick(spec.name, **spec.param_dict).step_cost())
    return cost


def time_steps(steps: int, kind: str, specs: tuple[TrickSpec, ...]) -> int:
    """`budget = "time"`: the steps that take these tricks the baseline's time at `steps` steps
    by the calibrated per-step time ratios of bench/schedule/step_costs.py (the reference machine's, fixed
    in that table, so the cells are the same on every machine)."""
    from bench.schedule.step_costs import RATIO

    ratio = 1.0
    for spec in specs:
        ratio *= RATIO[kind].get(spec.name, 1.0)
    return max(1, round(steps / ratio))


def evals_steps(steps: int, specs: tuple[TrickSpec, ...]) -> int:
    """`budget = "evals"`: the steps that give these tricks the baseline's number of network
    passes at `steps` steps."""
    return max(1, round(steps / step_cost(specs)))


def budget_steps(budget: str, steps: int, kind: str, specs: tuple[TrickSpec, ...]) -> int:
    """The steps a cell with these tricks trains under `budget` for the table's `steps`."""
    if budget == "evals":
        return evals_steps(steps, specs)
    if budget == "time":
        return time_steps(steps, kind, specs)
    return steps
