"""A grid's checked tables -> its cells, memberships, spec and held-out tuning plans
(`GridCells`, table by table). Cell ids are content hashes of the configs built here: stored
results are found by them, so what a cell holds must not change."""
from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.config import (CellConfig, ConfigError, OptimConfig, TrainConfig, TrickSpec,
                               limit)
from bench.schedule.grid.budget import budget_steps, step_cost
from bench.schedule.grid.data import DataTable
from bench.schedule.grid.settings import GridSettings
from bench.schedule.tuning import Candidate, TuningPlan
from bench.trickapi.registry import create_trick

if TYPE_CHECKING:
    from bench.designs import Variant


def full_spec(name: str, params: dict[str, Any] | None = None) -> TrickSpec:
    """A spec with every param filled in (defaults included) and the trick's version, so the
    cell id pins what runs."""
    trick = create_trick(name, **(params or {}))
    return TrickSpec.of(name, trick.params, trick.version)


class GridCells:
    """Collects the cells (each id once, in grid order), the memberships (which design, sweep
    point and tuned setting asked for each), the spec `ganbench run` stores, and the tuning
    plans, one [[data]] table at a time."""

    def __init__(self, path: Path, grid: GridSettings):
        self.path, self.grid = path, grid
        self.cells: dict[str, CellConfig] = {}
        self.members: dict[tuple, dict] = {}
        self.plans: dict[tuple, dict] = {}  # held-out tuning: plan key -> its parts (frozen below)
        self.used_params: set[str] = set()  # tricks some variant trains
        self.own_params: set[str] = set()  # tricks named in a [[data]] table's params
        self.spec: dict[str, Any] = {"description": grid.description, "designs": {},
                                     "tune": {"lr": grid.tune_lrs} if grid.tune_lrs else {},
                                     "base_lr": {}}
        if grid.tune_params:
            self.spec["tune"].update({f"{t}.{p}": [v for v, _ in vs]
                                      for t, ps in grid.tune_params.items()
                                      for p, vs in ps.items()})
        if grid.budget != "steps":
            self.spec["budget"] = grid.budget

    def add_table(self, table: DataTable) -> None:
        """Every design's variants of `table`, at each sweep point, seed and tuned setting."""
        from bench.designs import with_baseline

        grid, name = self.grid, table.name
        if table.own_tune_lrs:
            self.spec.setdefault("tune_lr", {})[name] = table.tune_lrs
        if table.primary is not None:
            self.spec.setdefault("primary", {})[name] = table.primary
        self.own_params.update(table.own_params)
        options = _design_options(table, grid)
        self.spec["base_lr"][name] = table.lr_axis if "lr" in table.swept else table.lr_axis[0]
        self.spec["designs"][name] = grid.designs[0] if len(grid.designs) == 1 \
            else list(grid.designs)
        for design, fn in grid.design_fns.items():
            result = fn(list(table.tricks), options)
            variants = with_baseline(result.variants)
            self._check_size(table, design, variants)
            for key, value in result.spec.items():
                self.spec.setdefault(key, {})[name] = value
            for variant in variants:
                self.used_params.update(variant.tricks)
                for point, sweep in _points(variant.tricks, table.params, table.axes,
                                            table.swept):
                    info = {"label": variant.label, "tricks": sorted(variant.tricks),
                            "factors": dict(variant.factors), "sweep": sweep, "tune": {},
                            "role": variant.role}
                    self._add_point(table, design, variant, point, info)

    def _check_size(self, table: DataTable, design: str, variants: list[Variant]) -> None:
        """At least one cell per variant, sweep point, tuned lr and seed: a design that asks
        for more than the limit is refused before any of its cells is built. The param axes
        counted are the table's (its own params over [params]), the ones its cells are built
        on: a table that fixes one value of a [params] sweep counts that one value."""
        params = table.params
        at_least = len(self.cells) + len(table.seeds) * max(1, len(table.tune_lrs)) * sum(
            math.prod([len(vs) for vs in table.axes.values()]
                      + [len(vs) for t in v.tricks for vs in params.get(t, {}).values()])
            for v in variants)
        if at_least > limit("cells"):
            raise ConfigError(f"{self.path}: {table.where}design {design!r} asks for at least "
                              f"{at_least} cells in all, above the limit of "
                              f"{limit('cells')} per grid (set GANBENCH_MAX_CELLS to "
                              f"raise it)")

    def _add_point(self, table: DataTable, design: str, variant: Variant, point: dict,
                   info: dict) -> None:
        """One variant at one sweep point: its cells on the seeds (untuned, or the same-seed
        [tune] lr view), or with held-out tuning its tuning-seed cells and plan."""
        if table.tune_seeds:
            self._add_held_out(table, design, variant, point, info)
            return
        for lr in table.tune_lrs or [None]:
            setting = {} if lr is None else {"lr": lr}
            for seed in table.seeds:
                self._add(self._cell(table, variant, point, setting, seed),
                          {**info, "tune": setting}, design, table.name)

    def _add_held_out(self, table: DataTable, design: str, variant: Variant, point: dict,
                      info: dict) -> None:
        """Stage 1 of held-out tuning (bench/schedule/tuning.py): each candidate setting on the
        tuning seeds, and the plan that picks the setting stage 2 trains on the seeds."""
        tuned = _tuned_axes(variant.tricks, table.tune_lrs, self.grid.tune_params)
        settings = [dict(zip([k for k, _ in tuned], combo)) for combo in
                    itertools.product(*[vs for _, vs in tuned])]
        if len(settings) == 1:  # nothing to choose: straight to the eval seeds
            for seed in table.seeds:
                self._add(self._cell(table, variant, point, settings[0], seed),
                          {**info, "tune": settings[0], "seed_role": "eval", "tuned_on": []},
                          design, table.name)
            return
        key = (table.name, tuple(sorted(variant.tricks)), json.dumps(
            {k: v for k, v in point.items()}, sort_keys=True, default=str))
        plan = self.plans.setdefault(key, {
            "dataset": table.name, "label": variant.label, "tune_seeds": tuple(table.tune_seeds),
            "eval_seeds": tuple(table.seeds), "metric": table.tune_metric, "infos": [],
            "candidates": tuple(Candidate(tuple(st.items()), c, round(step_cost(c.tricks), 4))
                                for st in settings
                                for c in [self._cell(table, variant, point, st, table.seeds[0])])})
        plan["infos"].append((design, info))
        for st in settings:
            for seed in table.tune_seeds:
                self._add(self._cell(table, variant, point, st, seed),
                          {**info, "tune": st, "seed_role": "tune",
                           "tune_metric": table.tune_metric}, design, table.name)

    def _cell(self, table: DataTable, variant: Variant, point: dict, setting: dict,
              seed: int) -> CellConfig:
        """The cell of `variant` at sweep `point` with the tuned `setting` ({"lr": ...,
        "trick.param": ...}) on `seed`."""
        lr = setting.get("lr", point["_data"].get("lr", table.lr_axis[0]))
        tricked = {t: {**point.get(t, {}), **{k.split(".", 1)[1]: v for k, v in setting.items()
                                              if k.startswith(f"{t}.")}}
                   for t in variant.tricks}
        specs = tuple(full_spec(t, tricked[t]) for t in variant.tricks)
        steps = budget_steps(self.grid.budget, point["_data"].get("steps", TrainConfig.steps),
                             table.kind, specs)
        train = TrainConfig(
            steps=steps,
            batch_size=point["_data"].get("batch_size", TrainConfig.batch_size),
            g_optim=OptimConfig(lr=table.net_lrs.get("g_lr", lr), beta1=table.beta1),
            d_optim=OptimConfig(lr=table.net_lrs.get("d_lr", lr), beta1=table.beta1),
            stop_on=table.stop_on, g_loss=table.g_loss, threads=self.grid.threads,
            **table.train_every)
        return CellConfig(data=table.data, net=table.net, train=train, tricks=specs, seed=seed)

    def _add(self, cell: CellConfig, info: dict, design: str, dataset: str) -> None:
        info = {**info, "step_cost": round(step_cost(cell.tricks), 4)}
        self.cells.setdefault(cell.cell_id, cell)
        if len(self.cells) > limit("cells"):
            raise ConfigError(f"{self.path}: the grid asks for more than "
                              f"{limit('cells')} cells, the limit per grid "
                              f"(set GANBENCH_MAX_CELLS to raise it)")
        self.members.setdefault((design, cell.cell_id), {
            "design": design, "dataset": dataset, "cell_id": cell.cell_id,
            "variant_id": cell.variant_id, "info": info})

    def finish(self) -> tuple[tuple[CellConfig, ...], tuple[dict, ...], dict, tuple]:
        """(cells, members, spec, plans) for `Grid`, once every table is added; a [params] trick
        that no design trains is refused."""
        grid = self.grid
        unused = sorted((set(grid.params) | set(grid.tune_params) | self.own_params)
                        - self.used_params)
        if unused:
            raise ConfigError(f"{self.path}: [params] names trick(s) {', '.join(unused)} that no "
                              f"design of this grid trains")
        # grids are named by file stem: see write_memberships
        self.spec["source"] = str(self.path.resolve())
        plans = tuple(TuningPlan(p["dataset"], p["label"], p["candidates"], p["tune_seeds"],
                                 p["eval_seeds"], p["metric"], tuple(p["infos"]))
                      for p in self.plans.values())
        if plans:
            self.spec["tune_seeds"] = {p.dataset: list(p.tune_seeds) for p in plans}
        return tuple(self.cells.values()), tuple(self.members.values()), self.spec, plans


def _design_options(table: DataTable, grid: GridSettings):
    """What the designs need to know of the table: its data kind, which tricks may not run
    together on it, and the grid's `cells` / `fraction_resolution`."""
    from bench.data import dataset_traits
    from bench.designs import DesignOptions
    from bench.trickapi.registry import conflict_reasons

    # which tricks may run together is judged with each at its first sweep point
    first = {t: {p: vs[0][0] for p, vs in ps.items()} for t, ps in table.params.items()}

    def conflicts(names: list[str], kind=table.kind, traits=dataset_traits(table.name),
                  arch=table.net.arch) -> list[str]:
        return conflict_reasons([create_trick(n, **first.get(n, {})) for n in names], kind,
                                traits, arch)

    return DesignOptions(kind=table.kind, conflicts=conflicts, cells=tuple(grid.explicit),
                         fraction_resolution=grid.fraction_resolution)


def _tuned_axes(tricks: tuple[str, ...], tune_lrs: list[float],
                tune_params: dict) -> list[tuple[str, list]]:
    """The tuned axes of one variant: the lr (when tuned) and the [tune] params of its own
    tricks."""
    axes = [("lr", list(tune_lrs))] if tune_lrs else []
    for t in sorted(tricks):
        for p, vs in tune_params.get(t, {}).items():
            axes.append((f"{t}.{p}", [v for v, _ in vs]))
    return axes


def _points(tricks: tuple[str, ...], params: dict, axes: dict, swept_data: list[str]):
    """The sweep points of one variant: the product of the data axes and the param axes of its
    tricks. Yields ({trick: {param: value}, "_data": {key: value}}, {swept key: value})."""
    keys, values = [], []
    for k, vs in axes.items():
        keys.append(("_data", k))
        values.append([(v, k in swept_data) for v in vs])
    for t in tricks:
        for p, vs in params.get(t, {}).items():
            keys.append((t, p))
            values.append(vs)
    for combo in itertools.product(*values):
        point: dict[str, dict] = {"_data": {}}
        sweep: dict[str, Any] = {}
        for (owner, k), (v, is_axis) in zip(keys, combo):
            point.setdefault(owner, {})[k] = v
            if is_axis:
                sweep[k if owner == "_data" else f"{owner}.{k}"] = v
        yield point, sweep
