"""Which cells train fused (bench/train/fused; docs/fused.md), decided before anything is built:
`plan_groups(cells)` groups the cells equal but for seed, optimizer settings and the trick params
the engine reads per cell, and says why each other cell trains alone; `work_units(cells,
workers=..., device=...)` turns a plan into what the executors (the local pool, Ray) hand out: a
`FusedGroup` per worker, cut to MAX_GROUP and split so every worker has work on a CPU, and a
cell alone otherwise; `--dry-run` prints the same. `group_device` places a group. `run
--no-fuse`, GANBENCH_NO_FUSE=1 or `fuse=False` leave every cell alone. Training a group is
bench/schedule/fused/group.py's.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from bench.core.config import CellConfig
from bench.data import dataset_kind, load_dataset
from bench.trickapi.registry import create_trick
from bench.train.fused.engine import FUSED_KINDS
from bench.train.fused.tricks import refusal

NO_FUSE_ENV = "GANBENCH_NO_FUSE"


def fusing_enabled(fuse: bool | None = None) -> bool:
    if fuse is not None:
        return fuse
    return os.environ.get(NO_FUSE_ENV, "") in ("", "0")


def group_key(cell: CellConfig) -> str:
    """Cells with one key may share a fused step: everything but the seed, the optimizers'
    settings (which the engine keeps per cell) and the trick params the engine reads per cell
    (`PER_CELL_PARAMS`; e.g. label smoothing's targets, not packing's m, which changes D)."""
    from bench.train.fused.tricks import shared_params

    d = cell.to_dict()
    d.pop("seed", None)
    train = dict(d.get("train", {}))
    train.pop("g_optim", None)
    train.pop("d_optim", None)
    d["train"] = train
    d["tricks"] = [[t["name"], t.get("version"), shared_params(t["name"], t.get("params", {}))]
                   for t in d.get("tricks", [])]
    import json

    return json.dumps(d, sort_keys=True)


def cell_refusal(cell: CellConfig) -> str | None:
    """Why a cell cannot be fused, from its config alone (layers are checked when built)."""
    if dataset_kind(cell.data.name) not in FUSED_KINDS:
        return "only 2-D and image cells are fused"
    for spec in cell.tricks:
        why = refusal(create_trick(spec.name, **spec.param_dict))
        if why:
            return why
    return None


@dataclass
class Plan:
    groups: list[list[CellConfig]] = field(default_factory=list)
    alone: dict[str, str] = field(default_factory=dict)  # cell id -> why it runs alone


def plan_groups(cells: list[CellConfig], fuse: bool | None = None,
                min_group: int = 2) -> Plan:
    plan = Plan()
    if not fusing_enabled(fuse):
        plan.alone = {c.cell_id: "fusing is off" for c in cells}
        return plan
    by_key: dict[str, list[CellConfig]] = {}
    for cell in cells:
        why = cell_refusal(cell)
        if why:
            plan.alone[cell.cell_id] = why
        else:
            by_key.setdefault(group_key(cell), []).append(cell)
    for group in by_key.values():
        why = None if len(group) < min_group else layer_refusal(group[0])
        if len(group) < min_group:
            plan.alone[group[0].cell_id] = "no other cell of its shape and budget"
        elif why:
            plan.alone.update({c.cell_id: why for c in group})
        else:
            plan.groups.append(group)
    return plan


def layer_refusal(cell: CellConfig) -> str | None:
    """Why the cell's nets, as its tricks build them, have no fused form (built on the CPU with
    a throwaway seed state: only the layers' types matter)."""
    from bench.trickapi.trick import TrickError
    from bench.train.fused.nets import NotFusable, check_fusable
    from bench.train.parts import make_nets, make_tricks

    try:
        data = load_dataset(cell.data.name, resolution=cell.data.resolution)
    except Exception as exc:  # e.g. image files not downloaded: run_cell stores the failure
        return f"its data cannot be loaded ({type(exc).__name__})"
    state = torch.get_rng_state()
    try:
        tricks = make_tricks(cell, data.kind)
        nets = make_nets(cell, data, tricks, torch.device("cpu"),
                         lambda n: data.train[:n])
        for name in ("G", "D"):
            check_fusable(getattr(nets, name), name)
    except NotFusable as exc:
        return str(exc)
    except TrickError as exc:  # not applicable / a conflict: run_cell stores it with the reason
        return f"not trainable: {exc}"
    finally:
        torch.set_rng_state(state)
    return None


# the most cells one fused step trains: on a CPU the rate per cell is flat or falls beyond K = 8
# (benchmarks/engine.py: ring8 1.2-1.5x alone at K = 8..64, 0.8-0.94x at K = 512; digits 0.7x
# at K = 512) while memory grows
# with K; a GPU keeps gaining up to hundreds
MAX_GROUP = {"cpu": 64, "cuda": 512}
# nets (data kind, NetConfig.arch) that by default fuse on a CPU: those whose fused step measured
# faster per core than one cell per worker (docs/fused.md: the 2-D MLP, ring8 3x128, 1.2-1.5x;
# the DCGAN-style conv nets of digits 16x16, 1.3-1.4x); PacGAN's nets measured 0.7-1.0x there,
# so on a CPU they train alone unless fusing is asked for (`fuse=True`); on a GPU every fusable
# group fuses
CPU_FUSE_NETS = frozenset({("2d", ""), ("image", "")})


# tricks whose fused layer loops over the models (bench/train/fused/suite_layers.py): on a CPU
# the group is no faster than its cells one per worker (minibatch discrimination at batch 512,
# paper-2d's cell: 0.75 s per cell-step fused at K = 5 against 0.54-1.1 s alone, a loaded
# 2-core CPU)
CPU_ALONE_TRICKS = frozenset({"minibatch_discrimination"})


def _nets_name(cell: CellConfig) -> str:
    return cell.net.arch or ("MLP" if dataset_kind(cell.data.name) == "2d" else "DCGAN")


@dataclass(frozen=True)
class FusedGroup:
    """Cells the executors hand to one worker, trained by `run_fused_group`."""
    cells: tuple[CellConfig, ...]

    @property
    def cell_ids(self) -> list[str]:
        return [c.cell_id for c in self.cells]

    def __len__(self) -> int:
        return len(self.cells)


def _device_kind(device: str | None, gpus: int) -> str:
    """Where fused groups train: 'cuda' when a GPU is visible and --device is auto or cuda*
    (a fused group is no longer launch-bound, so it goes where image cells go), else 'cpu'."""
    if gpus and (device in (None, "auto") or str(device).startswith("cuda")):
        return "cuda"
    return "cpu"


def group_device(*, gpus: int, device: str | None, gpu_load: list[int],
                 cells_per_gpu: int) -> str | None:
    """The device for a fused group now (None: every GPU is full; try again later)."""
    from bench.schedule.placement import choose_device

    if _device_kind(device, gpus) == "cuda":
        return choose_device("image", gpus=gpus, device="cuda" if device in (None, "auto")
                             else device, gpu_load=gpu_load, cells_per_gpu=cells_per_gpu)
    return "cpu" if device in (None, "auto") else device


def split_groups(groups: list[list[CellConfig]], singles: int, workers: int,
                 max_group: int) -> list[list[CellConfig]]:
    """Groups cut to at most `max_group` cells, then halved (largest first) while there are
    fewer units of work (groups + cells alone) than workers, so no worker idles while one
    trains a group: K separate processes on K cores beat one fused group on one core. A part
    of one cell runs alone."""
    parts: list[list[CellConfig]] = []
    for g in groups:
        n = -(-len(g) // max_group)
        size = -(-len(g) // n)
        parts += [g[i:i + size] for i in range(0, len(g), size)]
    while len(parts) + singles < workers:
        parts.sort(key=len, reverse=True)
        if not parts or len(parts[0]) < 2:
            break
        big = parts.pop(0)
        half = -(-len(big) // 2)
        parts += [big[:half], big[half:]]
    return parts


def work_units(cells: list[CellConfig], *, workers: int, device: str | None = None,
               gpus: int = 0, fuse: bool | None = None) -> tuple[list, Plan]:
    """What the executors hand out, in the order of `cells`: a FusedGroup for each part of a
    planned group of two or more cells, each other cell as itself; and the plan (its `alone`
    says why each other cell is not fused). On the CPU a group is split so every worker has
    work (`split_groups`); on a GPU it is only cut to MAX_GROUP."""
    plan = plan_groups(cells, fuse=fuse)
    kind = _device_kind(device, gpus)
    if kind == "cpu" and fuse is None:  # the default: fuse on a CPU only where it measured a win
        for g in list(plan.groups):
            heavy = [t.name for t in g[0].tricks if t.name in CPU_ALONE_TRICKS]
            if heavy:
                why = (f"on a CPU, {heavy[0]}'s fused layer runs model by model: no faster "
                       f"than one cell per worker (docs/fused.md); fused on a GPU")
            elif (dataset_kind(g[0].data.name), g[0].net.arch) not in CPU_FUSE_NETS:
                why = (f"on a CPU, {_nets_name(g[0])} nets fused measured no faster than one "
                       f"cell per worker (docs/fused.md); fused on a GPU")
            else:
                continue
            plan.groups.remove(g)
            plan.alone.update({c.cell_id: why for c in g})
    singles = len(cells) - sum(map(len, plan.groups))
    parts = split_groups(plan.groups, singles, workers if kind == "cpu" else 1,
                         MAX_GROUP[kind])
    first: dict[str, FusedGroup] = {}
    in_part: set[str] = set()
    for part in parts:
        ids = [c.cell_id for c in part]
        in_part.update(ids)
        if len(part) > 1:
            first[ids[0]] = FusedGroup(tuple(part))
        else:
            plan.alone[ids[0]] = "split off its group so that every worker has work"
    units: list = []
    for cell in cells:
        if cell.cell_id in first:
            units.append(first[cell.cell_id])
        elif cell.cell_id not in in_part or cell.cell_id in plan.alone:
            units.append(cell)
    return units, plan
