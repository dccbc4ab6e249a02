"""One [[data]] table of a grid file, checked and resolved against the grid's top level into a
`DataTable` (the keys are documented in bench/schedule/grid/__init__.py). Building its cells is
bench/schedule/grid/cells.py's part."""
from __future__ import annotations

from dataclasses import dataclass
from bench.core.config import DataConfig, NetConfig, OptimConfig, TrainConfig, check_limit
from bench.schedule.grid.checks import Checker
from bench.schedule.grid.settings import GridSettings, TrickParams, expand_tricks, trick_params
from bench.schedule.tuning import DEFAULT_TUNE_METRIC

DATA_KEYS = {"name", "resolution", "steps", "batch_size", "lr", "g_lr", "d_lr", "seeds", "tricks",
             "exclude", "activation", "init", "arch", "beta1",
             "z_dim", "width", "depth", "log_every", "checkpoint_every", "stop_on", "g_loss",
             "tune_seeds", "tune_metric", "tune_lr", "params", "primary"}
SWEEPABLE = ("lr", "steps", "batch_size")  # data keys that may be lists (sweep axes)
NET_SIZES = ("z_dim", "width", "depth")  # NetConfig's int keys
TRAIN_EVERY = ("log_every", "checkpoint_every")  # TrainConfig's int keys


@dataclass(frozen=True)
class DataTable:
    """The resolved settings of one [[data]] table: its own keys over the grid's."""
    where: str  # "[[data]] #i ": how its errors name it
    name: str  # normalized: the spelling of cell ids, tables and memberships
    kind: str  # "2d" or "image"
    seeds: list[int]
    tune_seeds: list[int]  # empty: no held-out tuning
    params: TrickParams  # [params] with the table's own params over them
    own_params: set[str]  # tricks the table's own params name
    tune_lrs: list[float]
    own_tune_lrs: bool  # tune_lr set by the table, not [tune]
    tune_metric: str
    primary: str | None  # the pre-registered metric of the verdict (bench/report/study)
    tricks: list[str]  # the trick names, exclusions removed
    axes: dict[str, list]  # SWEEPABLE key -> its values (a scalar is a one-point axis)
    swept: list[str]  # the SWEEPABLE keys given as lists: the sweep axes memberships name
    net_lrs: dict[str, float]  # g_lr / d_lr: one net's fixed lr
    train_every: dict[str, int]  # TRAIN_EVERY keys set
    stop_on: str
    g_loss: str
    beta1: float
    net: NetConfig
    data: DataConfig

    @property
    def lr_axis(self) -> list[float]:
        """The lrs the table trains at (the default lr when it sets none)."""
        return self.axes.get("lr", [OptimConfig().lr])


def parse_data_table(table: dict, i: int, grid: GridSettings, check: Checker,
                     seen: dict[str, int]) -> DataTable:
    """[[data]] table number i + 1, checked in the order its keys' errors are reported. `seen`
    (normalized dataset name -> table number) refuses a dataset named twice."""
    where = f"[[data]] #{i + 1} "
    name, kind = _dataset(table, where, i + 1, check, seen)
    seeds = check.ints(table["seeds"], where, "seeds", 0) if "seeds" in table else grid.seeds
    own = _own_params(table, where, check, grid)
    tune_lrs = check.numbers(table["tune_lr"], where, "tune_lr") if "tune_lr" in table \
        else grid.tune_lrs
    tune_seeds = _tune_seeds(table, where, check, grid, seeds, tune_lrs)
    tune_metric = check.metric(
        check.str_(table["tune_metric"], where, "tune_metric") if "tune_metric" in table
        else DEFAULT_TUNE_METRIC[kind], where, "tune_metric")
    primary = check.metric(check.str_(table["primary"], where, "primary"), where, "primary") \
        if "primary" in table else None
    tricks = _tricks(table, where, check, grid)
    axes = {k: check.axis(table[k], where, k) for k in SWEEPABLE if k in table}
    swept = [k for k in SWEEPABLE if isinstance(table.get(k), list)]
    net_lrs = _net_lrs(table, where, check, swept, tune_lrs)
    ints = {k: check.int_(table[k], where, k, 1 if k != "checkpoint_every" else 0)
            for k in NET_SIZES + TRAIN_EVERY if k in table}
    stop_on = check.str_(table["stop_on"], where, "stop_on") if "stop_on" in table \
        else TrainConfig.stop_on
    g_loss = check.str_(table["g_loss"], where, "g_loss") if "g_loss" in table \
        else TrainConfig.g_loss
    with check.naming(where):  # TrainConfig's own checks, named with file and table
        TrainConfig(stop_on=stop_on, g_loss=g_loss)
    resolution = check.int_(table["resolution"], where, "resolution", 1) \
        if "resolution" in table else None
    net_choice = {k: check.str_(table[k], where, k) for k in ("activation", "init", "arch")
                  if k in table}
    beta1 = _beta1(table, where, check)
    with check.naming(where):
        net = NetConfig(**{k: ints[k] for k in NET_SIZES if k in ints}, **net_choice)
        net.check_kind(kind)
    return DataTable(
        where=where, name=name, kind=kind, seeds=seeds, tune_seeds=tune_seeds,
        params={t: {**grid.params.get(t, {}), **own.get(t, {})} for t in {*grid.params, *own}},
        own_params=set(own), tune_lrs=tune_lrs, own_tune_lrs="tune_lr" in table,
        tune_metric=tune_metric, primary=primary, tricks=tricks, axes=axes, swept=swept,
        net_lrs=net_lrs, train_every={k: ints[k] for k in TRAIN_EVERY if k in ints},
        stop_on=stop_on, g_loss=g_loss, beta1=beta1, net=net, data=DataConfig(name, resolution))


def _dataset(table: dict, where: str, number: int, check: Checker,
             seen: dict[str, int]) -> tuple[str, str]:
    """The table's normalized dataset name and its kind."""
    from bench.data import DataError, dataset_kind, normalize_name

    check.keys(table, DATA_KEYS, where)
    if "name" not in table:
        raise check.error(where, "missing 'name'")
    raw = check.str_(table["name"], where, "name")
    with check.naming(where, DataError):
        kind = dataset_kind(raw)
    name = normalize_name(raw)
    if name in seen:
        # tables, designs and memberships are keyed by dataset: a second table would mix
        # its cells into the first one's rows
        raise check.error(where, f"repeats dataset {raw!r} of [[data]] #{seen[name]}; use sweep "
                          f"axes ({', '.join(SWEEPABLE)} = [...]) in one table, or a second "
                          f"grid file")
    seen[name] = number
    return name, kind


def _own_params(table: dict, where: str, check: Checker, grid: GridSettings) -> TrickParams:
    """The table's own "trick.param" values (over [params]); a tuned param is not also set."""
    own = trick_params(table, check, table=f"{where}params") if "params" in table else {}
    for trick, ps in own.items():
        tuned = sorted(set(ps) & set(grid.tune_params.get(trick, {})))
        if tuned:
            raise check.error(where, f"params: {trick}.{tuned[0]} is also in [tune]; use one")
    return own


def _tricks(table: dict, where: str, check: Checker, grid: GridSettings) -> list[str]:
    """The table's tricks (its own patterns, or the grid's) less its `exclude` patterns."""
    tricks = expand_tricks(check.strs(table["tricks"], where, "tricks") if "tricks" in table
                           else grid.tricks, where, check.path, grid.include_plugins)
    excluded = set(expand_tricks(check.strs(table["exclude"], where, "exclude"), where,
                                 check.path, True)) if "exclude" in table else set()
    return [t for t in tricks if t not in excluded]


def _tune_seeds(table: dict, where: str, check: Checker, grid: GridSettings, seeds: list[int],
                tune_lrs: list[float]) -> list[int]:
    """The held-out tuning seeds: something to tune, apart from `seeds`, each once, in bounds."""
    tune_seeds = check.ints(table["tune_seeds"], where, "tune_seeds", 0) \
        if "tune_seeds" in table else grid.tune_seeds
    if tune_seeds and not (tune_lrs or grid.tune_params):
        raise check.error(where, "tune_seeds without anything to tune: add [tune] lr = [...] "
                          "(or [tune] \"trick.param\" = [...])")
    shared = sorted(set(tune_seeds) & set(seeds))
    if shared:  # the point of held-out tuning: no seed both chooses and reports
        raise check.error(where, f"seeds {shared} are both tuning seeds (tune_seeds) and "
                          f"evaluation seeds (seeds); they must not overlap")
    if len(set(tune_seeds)) != len(tune_seeds) or len(set(seeds)) != len(seeds):
        raise check.error(where, "a seed is listed twice in seeds or tune_seeds")
    with check.naming(where):  # bounds (bench/core/config.py LIMITS), before any cell is built
        check_limit("seeds", len(seeds), "the number of seeds")
        check_limit("seeds", len(tune_seeds), "the number of tune_seeds")
    return tune_seeds


def _net_lrs(table: dict, where: str, check: Checker, swept: list[str],
             tune_lrs: list[float]) -> dict[str, float]:
    """g_lr / d_lr; the lr is swept, tuned or fixed per net, one of them."""
    if tune_lrs and "lr" in swept:
        raise check.error(where, "lr is both swept (a list) and tuned ([tune] lr); use one")
    net_lrs = {k: check.number(table[k], where, k) for k in ("g_lr", "d_lr") if k in table}
    if net_lrs and (tune_lrs or "lr" in swept):
        raise check.error(where, f"{' and '.join(net_lrs)} fix a net's lr; they cannot be "
                          f"combined with an lr sweep or [tune] lr")
    return net_lrs


def _beta1(table: dict, where: str, check: Checker) -> float:
    if "beta1" not in table:
        return OptimConfig.beta1
    beta1 = table["beta1"]
    if isinstance(beta1, bool) or not isinstance(beta1, (int, float)) or not 0 <= beta1 < 1:
        raise check.fail(where, "beta1", beta1, "a number in [0, 1)")
    return float(beta1)
