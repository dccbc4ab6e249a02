"""Grid designs: which trick combinations (variants) a grid trains. A registry like the tricks':
one module per design, each a plain function `variants(tricks, options) -> DesignResult`, listed
by `ganbench designs`, with one test each (tests/test_designs.py).

A design never trains anything and never checks the store; it only says which sets of tricks to
train. Combinations the tricks do not allow are still listed: the runner stores them as
`conflict` / `not-applicable` with the reason, so tables show them. Designs that must choose
(leave-one-out's full set) use `options.conflicts` and say what they chose in `spec`.

To add a design: a module here with NAME, SUMMARY and `variants`, listed in DESIGN_MODULES.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

from bench.core.config import ConfigError


@dataclass(frozen=True)
class Variant:
    tricks: tuple[str, ...]  # trick names; () is the baseline
    role: str = "variant"  # "baseline" | "variant" | "all" (leave-one-out's full set)
    factors: dict[str, int] = field(default_factory=dict)  # {trick: 0|1} in (fractional) factorials

    @property
    def label(self) -> str:
        return "+".join(sorted(self.tricks)) or "baseline"


@dataclass(frozen=True)
class DesignOptions:
    kind: str = "2d"  # the data kind of the table the design is applied to
    # why a set of tricks may not run together on this kind (empty: allowed)
    conflicts: Callable[[list[str]], list[str]] = lambda names: []
    cells: tuple[tuple[str, ...], ...] = ()  # the `cells` design's explicit list
    fraction_resolution: int = 4  # fractional-factorial: minimum resolution


@dataclass
class DesignResult:
    variants: list[Variant]
    spec: dict[str, Any] = field(default_factory=dict)  # stored with the grid (resolution...)


DESIGN_MODULES = ("baseline", "add_one", "leave_one_out", "pairs", "factorial",
                  "fractional_factorial", "cells")


def _module(mod: str):
    return importlib.import_module(f"bench.designs.{mod}")


def list_designs() -> dict[str, str]:
    """{name: one-line summary}, in registry order."""
    return {_module(m).NAME: _module(m).SUMMARY for m in DESIGN_MODULES}


def get_design(name: str) -> Callable[[list[str], DesignOptions], DesignResult]:
    for m in DESIGN_MODULES:
        module = _module(m)
        if module.NAME == name:
            return module.variants
    raise ConfigError(f"unknown design '{name}' (known: {', '.join(list_designs())})")


def with_baseline(variants: list[Variant]) -> list[Variant]:
    """Every design compares against the baseline: add it unless a run already is it."""
    if any(not v.tricks for v in variants):
        return [Variant(v.tricks, "baseline", v.factors) if not v.tricks else v
                for v in variants]
    return [Variant((), "baseline")] + variants
