"""Grid files (TOML) -> cells and memberships. A grid reads like a diff over the harness defaults:
it lists only what it changes; an unknown key or a value of the wrong type is a one-line error
naming the file, the key, the value and what is allowed.

```toml
description = "what this grid is for"
seeds = [0, 1, 2]
design = "add-one"          # or several: ["add-one", "leave-one-out", "pairs"] (`ganbench designs`)
tricks = ["*"]              # name patterns; "*" = the built-in tricks (plug-ins join when named
include_plugins = false     #   exactly, or with include_plugins = true)
cells = [["spectral_norm", "ttur"], ["wgan_gp"]]   # the trick sets of design "cells"
fraction_resolution = 4     # fractional-factorial: minimum resolution (>= 3)
tune_seeds = [100, 101]     # held-out tuning (bench/schedule/tuning.py): each variant's [tune] setting is
                            # chosen on these seeds, then trained and reported on `seeds`, which
                            # must not overlap them. Without it, [tune] lr trains every variant
                            # at each lr on `seeds` (the optimistic same-seed view)
budget = "steps"            # "evals": a trick costing k network updates per step (relative to
                            # the baseline; Trick.step_cost) trains steps / k steps: equal compute;
                            # "time": steps / its calibrated time ratio (bench/schedule/step_costs.py)

[params]                    # trick params; a list is a sweep axis (each point its own variant)
"historical_averaging.weight" = [0.1, 0.3]

[tune]                      # every variant at each of these Adam lrs, same seeds (best-LR view)
lr = [1e-4, 2e-4, 5e-4, 1e-3]
"unrolled.k" = [3, 5]       # with tune_seeds only: a trick param tuned like the lr

[[data]]                    # one table per dataset
name = "ring8"
resolution = 16             # images only: the side in pixels the data is resized to
steps = 2000                # steps, batch_size and lr may be lists too: sweep axes
batch_size = 256
lr = 1e-3                   # both nets' Adam lr (betas stay 0.5, 0.999)
g_lr = 1e-3                 # optional: G's own lr, overriding lr; not with an lr sweep or
d_lr = 1e-4                 #   [tune] lr (likewise d_lr, D's own)
seeds = [0, 1, 2]           # optional per-dataset override (also tune_seeds)
tune_metric = "reverse_kl"  # optional: what the tuning seeds choose on (default: reverse_kl on
                            # 2-D data, fid on images)
tune_lr = [1e-4, 2e-4]      # optional: this table's [tune] lr
primary = "reverse_kl"      # optional: the pre-registered metric of this dataset; the report
                            #   tests only its Δs (Holm within the dataset), the rest secondary
tricks = ["*"]              # optional per-dataset override
params = { "wgan_gp.setting" = "toy" }  # optional: this dataset's trick params, over [params]
                            #   (a trick's authors' setting for this kind of data)
exclude = ["minibatch_*"]   # optional: patterns to leave out (say why in a comment)
width = 128                 # optional NetConfig overrides: width, z_dim, depth (hidden layers),
z_dim = 64                  #   activation ("default" or "tanh", 2-D only), init ("normal"
depth = 3                   #   N(0, 0.02) or "orthogonal" gain 1.4)
activation = "tanh"
init = "orthogonal"
arch = "pacgan"             # optional: a named 2-D architecture instead of the MLP ("pacgan":
                            #   PacGAN's G 4x400 ReLU+BN, D 3x200 maxout x5; bench/nets/pacgan.py;
                            #   width/depth/activation must stay unset)
beta1 = 0.8                 # optional: both nets' Adam beta1 (default 0.5)
log_every = 50              # optional: loss curves averaged over N steps a point
checkpoint_every = 500      # optional: checkpoint every N steps (0: only when the run stops)
stop_on = "hard"            # optional: end a cell early on a hard failure flag (core/flags.py)
g_loss = "minimax"          # optional: G's baseline loss, "non_saturating" (default) or "minimax"
                            # (bench/trickapi/losses.py); tricks that replace the loss ignore it
```

Every design also trains the baseline. Cells whose tricks do not apply to the data kind or may
not run together are kept: the runner stores them as `not-applicable` / `conflict` with the
reason, so tables show them. `load_grid` also returns the memberships (which design, sweep point
and tuned lr asked for each cell) and the grid spec that `ganbench run` stores with
`Store.put_grid`.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.core.config import (CellConfig, ConfigError, DataConfig, NetConfig, OptimConfig,
                               TrainConfig, TrickSpec, check_limit, env_threads, limit)
from bench.core.grid_files import GRID_DIR, resolve_grid_path  # noqa: F401 (re-exported)
from bench.core.metric_directions import METRIC_DIRECTIONS
from bench.schedule.grid_checks import Checker, read_toml, show
from bench.schedule.tuning import DEFAULT_TUNE_METRIC, Candidate, TuningPlan
from bench.trickapi.registry import create_trick, get_trick_class, list_tricks

TOP_KEYS = {"description", "seeds", "design", "tricks", "include_plugins", "data", "params",
            "tune", "cells", "fraction_resolution", "tune_seeds", "budget"}
DATA_KEYS = {"name", "resolution", "steps", "batch_size", "lr", "g_lr", "d_lr", "seeds", "tricks",
             "exclude", "activation", "init", "arch", "beta1",
             "z_dim", "width", "depth", "log_every", "checkpoint_every", "stop_on", "g_loss",
             "tune_seeds", "tune_metric", "tune_lr", "params", "primary"}
SWEEPABLE = ("lr", "steps", "batch_size")  # data keys that may be lists (sweep axes)
TUNE_KEYS = {"lr"}  # and "trick.param" keys, with tune_seeds
BUDGETS = ("steps", "evals", "time")


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    cells: tuple[CellConfig, ...]
    members: tuple[dict, ...] = ()  # Store.put_grid members, in grid order
    spec: dict = field(default_factory=dict)  # Store.put_grid spec
    # held-out tuning (bench/schedule/tuning.py): `cells` holds stage 1 (tuning seeds) and the untuned
    # cells; each plan's evaluation cells are resolved from the stored stage-1 records
    plans: tuple = ()


def full_spec(name: str, params: dict[str, Any] | None = None) -> TrickSpec:
    """A spec with every param filled in (defaults included) and the trick's version, so the
    cell id pins what runs."""
    trick = create_trick(name, **(params or {}))
    return TrickSpec.of(name, trick.params, trick.version)


# -- loading --------------------------------------------------------------------------------------
def _is_builtin(name: str) -> bool:
    return get_trick_class(name).__module__.split(".")[0] == "tricks"


def _expand(patterns: list[str], where: str, path: Path, include_plugins: bool) -> list[str]:
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


def _params(doc: dict, check: Checker, table: str = "[params]") -> dict[str, dict[str, list]]:
    """[params] (or [tune]'s "trick.param" keys) -> {trick: {param: [(value, is_axis)]}} (a
    scalar is a one-point list)."""
    where = f"{table} "
    table = doc.get("params", {})
    if not isinstance(table, dict):
        raise check.fail("", "params", table, 'a table of "trick.param" = value')
    out: dict[str, dict[str, list]] = {}
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
                raise ConfigError(f"{check.path}: {where}\"{key}\" = {show(value)}: "
                                  f"{exc}") from None
        out.setdefault(trick, {})[pname] = [(v, isinstance(value, list)) for v in values]
    return out


def load_grid(name_or_path: str, edit=None) -> Grid:
    """The grid a preset name or TOML path describes. Every error is one line naming the file
    (and, where the check knows it, the table and key). `edit(doc) -> doc` changes the parsed
    file before it is read (`compare` keeps a grid's protocol but names its own tricks)."""
    from bench.data import DataError
    from bench.trickapi.trick import TrickError

    path = resolve_grid_path(name_or_path)
    try:
        return _load_grid(path, edit)
    except (ConfigError, TrickError, DataError) as exc:
        if str(exc).startswith(f"{path}:"):
            raise
        # raised below the grid's own checks (a trick's params, a cell's config): same type,
        # so callers that tell them apart still can
        raise type(exc)(f"{path}: {exc}") from None


def _load_grid(path: Path, edit=None) -> Grid:
    from bench.data import DataError, dataset_kind, dataset_traits, normalize_name
    from bench.designs import DesignOptions, get_design, with_baseline
    from bench.trickapi.registry import conflict_reasons

    doc = read_toml(path)
    if edit is not None:
        doc = edit(doc)
    check = Checker(path)
    check.keys(doc, TOP_KEYS, "")
    description = check.str_(doc.get("description", ""), "", "description")
    designs = doc.get("design", "add-one")
    designs = [check.str_(designs, "", "design")] if not isinstance(designs, list) else \
        check.strs(designs, "", "design")
    try:
        design_fns = {d: get_design(d) for d in designs}
    except ConfigError as exc:
        raise ConfigError(f"{path}: design = {show(doc['design'])}: {exc}") from None
    include_plugins = check.bool_(doc.get("include_plugins", False), "", "include_plugins")
    top_seeds = check.ints(doc["seeds"], "", "seeds", 0) if "seeds" in doc else [0]
    threads = env_threads()  # part of every cell (in its id when not 1)
    top_tricks = check.strs(doc["tricks"], "", "tricks") if "tricks" in doc else ["*"]
    explicit = [tuple(check.strs(c, "", "cells")) for c in
                check.list_(doc["cells"], "", "cells", lambda c: c, "lists of trick names")] \
        if "cells" in doc else []
    for c in explicit:
        for name in c:
            get_trick_class(name)
    for key, design in (("cells", "cells"), ("fraction_resolution", "fractional-factorial")):
        if key in doc and design not in designs:  # a key nothing reads is a mistake
            raise ConfigError(f"{path}: {key} is only read by design '{design}', which this "
                              f"grid does not use (design = {show(doc.get('design', 'add-one'))})")
    if "cells" in designs and not explicit:
        raise ConfigError(f"{path}: design 'cells' needs a `cells` list, e.g. "
                          f'cells = [["spectral_norm", "ttur"], ["wgan_gp"]]')
    fraction_res = check.int_(doc.get("fraction_resolution", 4), "", "fraction_resolution", 3)
    params = _params(doc, check)
    tune = doc.get("tune", {})
    if not isinstance(tune, dict):
        raise check.fail("", "tune", tune, "a table, e.g. [tune] lr = [1e-4, 2e-4]")
    top_tune_seeds = check.ints(doc["tune_seeds"], "", "tune_seeds", 0) \
        if "tune_seeds" in doc else []
    any_tune_seeds = bool(top_tune_seeds) or any(
        isinstance(t, dict) and "tune_seeds" in t for t in doc.get("data", []) or [])
    # "trick.param" keys of [tune] are tuned params (held-out tuning only)
    check.keys({k: v for k, v in tune.items() if "." not in k}, TUNE_KEYS, "[tune] ")
    tune_params = _params({"params": {k: v for k, v in tune.items() if "." in k}}, check,
                          table="[tune]")
    if tune_params and not any_tune_seeds:
        raise ConfigError(f"{path}: [tune] tunes trick params ({', '.join(_names(tune_params))})"
                          f" only with tune_seeds (held-out tuning); for a sweep on the same "
                          f"seeds use [params]")
    for trick, ps in tune_params.items():
        both = sorted(set(ps) & set(params.get(trick, {})))
        if both:
            raise ConfigError(f"{path}: {trick}.{both[0]} is both in [params] and [tune]; use one")
    budget = check.str_(doc.get("budget", "steps"), "", "budget")
    if budget not in BUDGETS:
        raise check.fail("", "budget", budget, " or ".join(f'"{b}"' for b in BUDGETS))
    grid_tune_lrs = [check.number(v, "[tune] ", "lr") for v in
                check.list_(tune["lr"], "[tune] ", "lr", lambda v: v, "positive numbers")] \
        if "lr" in tune else []
    tables = doc.get("data")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        raise ConfigError(f"{path}: no [[data]] table")

    cells: dict[str, CellConfig] = {}
    members: dict[tuple, dict] = {}
    spec: dict[str, Any] = {"description": description, "designs": {},
                            "tune": {"lr": grid_tune_lrs} if grid_tune_lrs else {},
                            "base_lr": {}}
    if tune_params:
        spec["tune"].update({f"{t}.{p}": [v for v, _ in vs] for t, ps in tune_params.items()
                             for p, vs in ps.items()})
    if budget != "steps":
        spec["budget"] = budget
    plans: dict[tuple, dict] = {}  # held-out tuning: plan key -> its parts (frozen below)
    used_params: set[str] = set()
    unused_own: set[str] = set()  # tricks named in a [[data]] table's params
    seen: dict[str, int] = {}
    for i, table in enumerate(tables):
        where = f"[[data]] #{i + 1} "
        check.keys(table, DATA_KEYS, where)
        if "name" not in table:
            raise ConfigError(f"{path}: {where}missing 'name'")
        raw = check.str_(table["name"], where, "name")
        try:
            kind = dataset_kind(raw)
        except DataError as exc:
            raise ConfigError(f"{path}: {where}{exc}") from None
        name = normalize_name(raw)  # the spelling of cell ids, tables and memberships
        if name in seen:
            # tables, designs and memberships are keyed by dataset: a second table would mix
            # its cells into the first one's rows
            raise ConfigError(f"{path}: {where}repeats dataset {raw!r} of [[data]] #{seen[name]}; "
                              f"use sweep axes ({', '.join(SWEEPABLE)} = [...]) in one table, or "
                              f"a second grid file")
        seen[name] = i + 1
        seeds = check.ints(table["seeds"], where, "seeds", 0) if "seeds" in table else top_seeds
        own = _params(table, check, table=f"{where}params") if "params" in table else {}
        for trick, ps in own.items():
            tuned = sorted(set(ps) & set(tune_params.get(trick, {})))
            if tuned:
                raise ConfigError(f"{path}: {where}params: {trick}.{tuned[0]} is also in [tune]; "
                                  f"use one")
        table_params = {t: {**params.get(t, {}), **own.get(t, {})} for t in {*params, *own}}
        unused_own.update(own)
        tune_lrs = [check.number(v, where, "tune_lr") for v in check.list_(
            table["tune_lr"], where, "tune_lr", lambda v: v, "positive numbers")] \
            if "tune_lr" in table else grid_tune_lrs
        if "tune_lr" in table:
            spec.setdefault("tune_lr", {})[name] = tune_lrs
        tune_seeds = check.ints(table["tune_seeds"], where, "tune_seeds", 0) \
            if "tune_seeds" in table else top_tune_seeds
        if tune_seeds and not (tune_lrs or tune_params):
            raise ConfigError(f"{path}: {where}tune_seeds without anything to tune: add [tune] "
                              f"lr = [...] (or [tune] \"trick.param\" = [...])")
        shared = sorted(set(tune_seeds) & set(seeds))
        if shared:  # the point of held-out tuning: no seed both chooses and reports
            raise ConfigError(f"{path}: {where}seeds {shared} are both tuning seeds (tune_seeds) "
                              f"and evaluation seeds (seeds); they must not overlap")
        if len(set(tune_seeds)) != len(tune_seeds) or len(set(seeds)) != len(seeds):
            raise ConfigError(f"{path}: {where}a seed is listed twice in seeds or tune_seeds")
        try:  # bounds (bench/core/config.py LIMITS), before any cell is built
            check_limit("seeds", len(seeds), "the number of seeds")
            check_limit("seeds", len(tune_seeds), "the number of tune_seeds")
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where}{exc}") from None
        tune_metric = check.str_(table["tune_metric"], where, "tune_metric") \
            if "tune_metric" in table else DEFAULT_TUNE_METRIC[kind]
        if tune_metric not in METRIC_DIRECTIONS or METRIC_DIRECTIONS[tune_metric] is None:
            raise check.fail(where, "tune_metric", tune_metric,
                             "a metric with a direction: "
                             + ", ".join(m for m, d in METRIC_DIRECTIONS.items() if d))
        if "primary" in table:  # the pre-registered metric of the verdict (bench/report/study)
            primary = check.str_(table["primary"], where, "primary")
            if METRIC_DIRECTIONS.get(primary) is None:
                raise check.fail(where, "primary", primary,
                                 "a metric with a direction: "
                                 + ", ".join(m for m, d in METRIC_DIRECTIONS.items() if d))
            spec.setdefault("primary", {})[name] = primary
        tricks = _expand(check.strs(table["tricks"], where, "tricks") if "tricks" in table
                         else top_tricks, where, path, include_plugins)
        excluded = set(_expand(check.strs(table["exclude"], where, "exclude"), where, path, True)
                       ) if "exclude" in table else set()
        tricks = [t for t in tricks if t not in excluded]
        axes = {k: check.axis(table[k], where, k) for k in SWEEPABLE if k in table}
        swept_data = [k for k in SWEEPABLE if isinstance(table.get(k), list)]
        if tune_lrs and "lr" in swept_data:
            raise ConfigError(f"{path}: {where}lr is both swept (a list) and tuned ([tune] lr); "
                              f"use one")
        net_lrs = {k: check.number(table[k], where, k) for k in ("g_lr", "d_lr") if k in table}
        if net_lrs and (tune_lrs or "lr" in swept_data):
            raise ConfigError(f"{path}: {where}{' and '.join(net_lrs)} fix a net's lr; they "
                              f"cannot be combined with an lr sweep or [tune] lr")
        fixed = {k: check.int_(table[k], where, k, 1 if k != "checkpoint_every" else 0)
                 for k in ("z_dim", "width", "depth", "log_every", "checkpoint_every")
                 if k in table}
        stop_on = check.str_(table["stop_on"], where, "stop_on") if "stop_on" in table \
            else TrainConfig.stop_on
        g_loss = check.str_(table["g_loss"], where, "g_loss") if "g_loss" in table \
            else TrainConfig.g_loss
        try:  # TrainConfig's own checks, named with file and table
            TrainConfig(stop_on=stop_on, g_loss=g_loss)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where}{exc}") from None
        resolution = check.int_(table["resolution"], where, "resolution", 1) \
            if "resolution" in table else None
        net_choice = {k: check.str_(table[k], where, k) for k in ("activation", "init", "arch")
                      if k in table}
        beta1 = OptimConfig.beta1
        if "beta1" in table:
            beta1 = table["beta1"]
            if isinstance(beta1, bool) or not isinstance(beta1, (int, float)) \
                    or not 0 <= beta1 < 1:
                raise check.fail(where, "beta1", beta1, "a number in [0, 1)")
            beta1 = float(beta1)
        try:
            net = NetConfig(**{k: fixed[k] for k in ("z_dim", "width", "depth") if k in fixed},
                            **net_choice)
            net.check_kind(kind)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {where}{exc}") from None
        data = DataConfig(name, resolution)
        first = {t: {p: vs[0][0] for p, vs in ps.items()} for t, ps in table_params.items()}

        def conflicts(names: list[str], kind=kind, traits=dataset_traits(name),
                      arch=net.arch) -> list[str]:
            return conflict_reasons([create_trick(n, **first.get(n, {})) for n in names], kind,
                                    traits, arch)

        options = DesignOptions(kind=kind, conflicts=conflicts, cells=tuple(explicit),
                                fraction_resolution=fraction_res)
        lr_axis = axes.get("lr", [OptimConfig().lr])
        spec["base_lr"][name] = lr_axis if "lr" in swept_data else lr_axis[0]
        spec["designs"][name] = designs[0] if len(designs) == 1 else list(designs)
        for design, fn in design_fns.items():
            result = fn(list(tricks), options)
            # at least one cell per variant and seed: refused before building any of them
            at_least = len(cells) + len(seeds) * max(1, len(tune_lrs)) * sum(
                math.prod([len(vs) for vs in axes.values()]
                          + [len(vs) for t in v.tricks for vs in params.get(t, {}).values()])
                for v in with_baseline(result.variants))
            if at_least > limit("cells"):
                raise ConfigError(f"{path}: {where}design {design!r} asks for at least "
                                  f"{at_least} cells in all, above the limit of "
                                  f"{limit('cells')} per grid (set GANBENCH_MAX_CELLS to "
                                  f"raise it)")
            for key, value in result.spec.items():
                spec.setdefault(key, {})[name] = value
            for variant in with_baseline(result.variants):
                used_params.update(variant.tricks)
                for point, sweep in _points(variant.tricks, table_params, axes, swept_data):
                    info = {"label": variant.label, "tricks": sorted(variant.tricks),
                            "factors": dict(variant.factors), "sweep": sweep, "tune": {},
                            "role": variant.role}

                    def make(setting: dict, seed: int, point=point) -> CellConfig:
                        lr = setting.get("lr", point["_data"].get("lr", lr_axis[0]))
                        tricked = {t: {**point.get(t, {}), **{k.split(".", 1)[1]: v for k, v
                                                              in setting.items()
                                                              if k.startswith(f"{t}.")}}
                                   for t in variant.tricks}
                        specs = tuple(full_spec(t, tricked[t]) for t in variant.tricks)
                        steps = point["_data"].get("steps", TrainConfig.steps)
                        if budget == "evals":
                            steps = evals_steps(steps, specs)
                        elif budget == "time":
                            steps = time_steps(steps, kind, specs)
                        train = TrainConfig(
                            steps=steps,
                            batch_size=point["_data"].get("batch_size", TrainConfig.batch_size),
                            g_optim=OptimConfig(lr=net_lrs.get("g_lr", lr), beta1=beta1),
                            d_optim=OptimConfig(lr=net_lrs.get("d_lr", lr), beta1=beta1),
                            stop_on=stop_on, g_loss=g_loss, threads=threads,
                            **{k: fixed[k] for k in ("log_every", "checkpoint_every")
                               if k in fixed})
                        return CellConfig(data=data, net=net, train=train, tricks=specs,
                                          seed=seed)

                    def add(cell: CellConfig, info: dict, design=design) -> None:
                        info = {**info, "step_cost": round(step_cost(cell.tricks), 4)}
                        cells.setdefault(cell.cell_id, cell)
                        if len(cells) > limit("cells"):
                            raise ConfigError(f"{path}: the grid asks for more than "
                                              f"{limit('cells')} cells, the limit per grid "
                                              f"(set GANBENCH_MAX_CELLS to raise it)")
                        members.setdefault((design, cell.cell_id), {
                            "design": design, "dataset": name, "cell_id": cell.cell_id,
                            "variant_id": cell.variant_id, "info": info})

                    if not tune_seeds:  # untuned, or the same-seed [tune] lr view
                        for lr in tune_lrs or [None]:
                            setting = {} if lr is None else {"lr": lr}
                            for seed in seeds:
                                add(make(setting, seed), {**info, "tune": setting})
                        continue
                    tuned = _tuned_axes(variant.tricks, tune_lrs, tune_params)
                    settings = [dict(zip([k for k, _ in tuned], combo)) for combo in
                                itertools.product(*[vs for _, vs in tuned])]
                    if len(settings) == 1:  # nothing to choose: straight to the eval seeds
                        for seed in seeds:
                            add(make(settings[0], seed), {**info, "tune": settings[0],
                                                          "seed_role": "eval", "tuned_on": []})
                        continue
                    key = (name, tuple(sorted(variant.tricks)), json.dumps(
                        {k: v for k, v in point.items()}, sort_keys=True, default=str))
                    plan = plans.setdefault(key, {
                        "dataset": name, "label": variant.label, "tune_seeds": tuple(tune_seeds),
                        "eval_seeds": tuple(seeds), "metric": tune_metric, "infos": [],
                        "candidates": tuple(Candidate(tuple(st.items()), c,
                                                      round(step_cost(c.tricks), 4))
                                            for st in settings for c in [make(st, seeds[0])])})
                    plan["infos"].append((design, info))
                    for st in settings:
                        for seed in tune_seeds:
                            add(make(st, seed), {**info, "tune": st, "seed_role": "tune",
                                                 "tune_metric": tune_metric})
    unused = sorted((set(params) | set(tune_params) | unused_own) - used_params)
    if unused:
        raise ConfigError(f"{path}: [params] names trick(s) {', '.join(unused)} that no design "
                          f"of this grid trains")
    spec["source"] = str(path.resolve())  # grids are named by file stem: see write_memberships
    frozen = tuple(TuningPlan(p["dataset"], p["label"], p["candidates"], p["tune_seeds"],
                              p["eval_seeds"], p["metric"], tuple(p["infos"]))
                   for p in plans.values())
    if frozen:
        spec["tune_seeds"] = {p.dataset: list(p.tune_seeds) for p in frozen}
    return Grid(path.stem, description, tuple(cells.values()), tuple(members.values()), spec,
                frozen)


def _names(tune_params: dict) -> list[str]:
    return [f"{t}.{p}" for t, ps in tune_params.items() for p in ps]


def _tuned_axes(tricks: tuple[str, ...], tune_lrs: list[float],
                tune_params: dict) -> list[tuple[str, list]]:
    """The tuned axes of one variant: the lr (when tuned) and the [tune] params of its own
    tricks."""
    axes = [("lr", list(tune_lrs))] if tune_lrs else []
    for t in sorted(tricks):
        for p, vs in tune_params.get(t, {}).items():
            axes.append((f"{t}.{p}", [v for v, _ in vs]))
    return axes


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
