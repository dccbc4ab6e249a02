"""A grid file's top level, checked: `GridSettings`, what every [[data]] table starts from
(bench/schedule/grid/__init__.py documents the keys). Also what both levels share:
"trick.param" tables and trick name patterns."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.core.config import ConfigError, env_threads
from bench.schedule.grid.budget import BUDGETS
from bench.schedule.grid.checks import Checker, show
from bench.trickapi.registry import create_trick, get_trick_class, list_tricks

TOP_KEYS = {"description", "seeds", "design", "tricks", "include_plugins", "data", "params",
            "tune", "cells", "fraction_resolution", "tune_seeds", "budget",
            "published"}  # [published]: read by grid/published.py, after the cells
TUNE_KEYS = {"lr"}  # and "trick.param" keys, with tune_seeds

# {trick: {param: [(value, is_axis)]}}: a scalar is a one-point list that is no sweep axis
TrickParams = dict[str, dict[str, list]]


@dataclass(frozen=True)
class GridSettings:
    """The checked top level of a grid file; a [[data]] table may override some of it."""
    description: str
    designs: list[str]
    design_fns: dict[str, Callable]  # design name -> bench.designs variants function
    include_plugins: bool
    seeds: list[int]
    threads: int  # env_threads(): part of every cell (in its id when not 1)
    tricks: list[str]  # name patterns
    explicit: list[tuple[str, ...]]  # the trick sets of design "cells"
    fraction_resolution: int
    params: TrickParams
    tune_params: TrickParams  # [tune]'s "trick.param" keys (held-out tuning only)
    tune_seeds: list[int]
    budget: str
    tune_lrs: list[float]
    tables: list[dict]  # the raw [[data]] tables (bench/schedule/grid/data.py reads each)


def parse_settings(doc: dict, check: Checker) -> GridSettings:
    """The top level of `doc`, checked in the order the keys' errors are reported."""
    check.keys(doc, TOP_KEYS, "")
    description = check.str_(doc.get("description", ""), "", "description")
    designs, design_fns = _designs(doc, check)
    include_plugins = check.bool_(doc.get("include_plugins", False), "", "include_plugins")
    seeds = check.ints(doc["seeds"], "", "seeds", 0) if "seeds" in doc else [0]
    threads = env_threads()
    tricks = check.strs(doc["tricks"], "", "tricks") if "tricks" in doc else ["*"]
    explicit = _explicit_cells(doc, check, designs)
    fraction_resolution = check.int_(doc.get("fraction_resolution", 4), "",
                                     "fraction_resolution", 3)
    params = trick_params(doc, check)
    tune_seeds, tune_params, tune = _tune(doc, check, params)
    budget = check.str_(doc.get("budget", "steps"), "", "budget")
    if budget not in BUDGETS:
        raise check.fail("", "budget", budget, " or ".join(f'"{b}"' for b in BUDGETS))
    tune_lrs = check.numbers(tune["lr"], "[tune] ", "lr") if "lr" in tune else []
    tables = doc.get("data")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise check.error("", "no [[data]] table")
    return GridSettings(
        description=description, designs=designs, design_fns=design_fns,
        include_plugins=include_plugins, seeds=seeds, threads=threads, tricks=tricks,
        explicit=explicit, fraction_resolution=fraction_resolution, params=params,
        tune_params=tune_params, tune_seeds=tune_seeds, budget=budget, tune_lrs=tune_lrs,
        tables=tables)


def _designs(doc: dict, check: Checker) -> tuple[list[str], dict[str, Callable]]:
    from bench.designs import get_design

    designs = doc.get("design", "add-one")
    designs = [check.str_(designs, "", "design")] if not isinstance(designs, list) else \
        check.strs(designs, "", "design")
    with check.naming(f"design = {show(doc.get('design', 'add-one'))}: "):
        return designs, {d: get_design(d) for d in designs}


def _explicit_cells(doc: dict, check: Checker, designs: list[str]) -> list[tuple[str, ...]]:
    """The `cells` list (design "cells"); it and fraction_resolution only go with their design."""
    explicit = [tuple(check.strs(c, "", "cells")) for c in
                check.list_(doc["cells"], "", "cells", lambda c: c, "lists of trick names")] \
        if "cells" in doc else []
    for c in explicit:
        for name in c:
            get_trick_class(name)
    for key, design in (("cells", "cells"), ("fraction_resolution", "fractional-factorial")):
        if key in doc and design not in designs:  # a key nothing reads is a mistake
            raise check.error("", f"{key} is only read by design '{design}', which this grid "
                              f"does not use (design = {show(doc.get('design', 'add-one'))})")
    if "cells" in designs and not explicit:
        raise check.error("", "design 'cells' needs a `cells` list, e.g. "
                          'cells = [["spectral_norm", "ttur"], ["wgan_gp"]]')
    return explicit


def _tune(doc: dict, check: Checker, params: TrickParams) -> tuple[list[int], TrickParams, dict]:
    """tune_seeds, [tune]'s tuned trick params and the [tune] table; a trick param is tuned only
    on held-out seeds and is not also set in [params]."""
    tune = doc.get("tune", {})
    if not isinstance(tune, dict):
        raise check.fail("", "tune", tune, "a table, e.g. [tune] lr = [1e-4, 2e-4]")
    tune_seeds = check.ints(doc["tune_seeds"], "", "tune_seeds", 0) \
        if "tune_seeds" in doc else []
    any_tune_seeds = bool(tune_seeds) or any(
        isinstance(t, dict) and "tune_seeds" in t for t in doc.get("data", []) or [])
    check.keys({k: v for k, v in tune.items() if "." not in k}, TUNE_KEYS, "[tune] ")
    tune_params = trick_params({"params": {k: v for k, v in tune.items() if "." in k}}, check,
                               table="[tune]")
    if tune_params and not any_tune_seeds:
        names = [f"{t}.{p}" for t, ps in tune_params.items() for p in ps]
        raise check.error("", f"[tune] tunes trick params ({', '.join(names)}) only with "
                          f"tune_seeds (held-out tuning); for a sweep on the same seeds use "
                          f"[params]")
    for trick, ps in tune_params.items():
        both = sorted(set(ps) & set(params.get(trick, {})))
        if both:
            raise check.error("", f"{trick}.{both[0]} is both in [params] and [tune]; use one")
    return tune_seeds, tune_params, tune


def trick_params(doc: dict, check: Checker, table: str = "[params]") -> TrickParams:
    """`doc`'s "params" table ([params], a [[data]] table's params, or [tune]'s "trick.param"
    keys) -> {trick: {param: [(value, is_axis)]}}; every value is tried on the trick."""
    where = f"{table} "
    table = doc.get("params", {})
    if not isinstance(table, dict):
        raise check.fail("", "params", table, 'a table of "trick.param" = value')
    out: TrickParams = {}
    for key, value in table.items():
        trick, dot, pname = key.partition(".")
        if not dot or not trick or not pname:
            raise check.fail(where, f'"{key}"', value, 'a key of the form "trick.param"')
        get_trick_class(trick)  # unknown trick: TrickError naming it
        values = value if isinstance(value, list) else [value]
        if not values or any(isinstance(v, (list, dict)) for v in values):
            raise check.fail(where, f'"{key}"', value,
                             "a number, string or boolean, or a non-empty list of them")
        for v in values:  # each point must be a valid param value
            try:
                create_trick(trick, **{pname: v})
            except Exception as exc:
                raise check.error(where, f"\"{key}\" = {show(value)}: {exc}") from None
        out.setdefault(trick, {})[pname] = [(v, isinstance(value, list)) for v in values]
    return out


def _is_builtin(name: str) -> bool:
    return get_trick_class(name).__module__.split(".")[0] == "tricks"


def expand_tricks(patterns: list[str], where: str, path: Path,
                  include_plugins: bool) -> list[str]:
    """Trick names matching the patterns. A wildcard pattern picks built-in tricks only (so an
    installed plug-in never changes a preset) unless include_plugins; an exact name always
    counts."""
    names: list[str] = []
    for pat in patterns:
        hits = list_tricks(pat)
        if any(ch in pat for ch in "*?[") and not include_plugins:
            hits = [h for h in hits if _is_builtin(h)]
        if not hits:
            raise ConfigError(f"{path}: {where}trick pattern '{pat}' matches no registered trick")
        names.extend(h for h in hits if h not in names)
    return names
