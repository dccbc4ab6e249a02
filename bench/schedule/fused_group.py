"""Training a group of cells fused (bench/train/fused), stored exactly as cells run one at a time:
one lease, one checkpoint and one record per cell. The entry beside `run_cell` that the local
executors (bench/schedule/executor.py, in-process and pool) call; see docs/fused.md.

`plan_groups(cells)` says which cells could be fused and why the others not;
`work_units(cells, workers=..., device=...)` turns a plan into what the executors hand out (a
`FusedGroup` per worker, split so every worker has work; a cell alone otherwise), and `--dry-run`
prints the same; `run_fused_group(cells, store, ...)` trains one group and returns what it
stored, and the cells it left to `run_cell` (busy elsewhere, refused once built, or at another
step). `run --no-fuse`, GANBENCH_NO_FUSE=1 or `fuse=False` leave every cell to `run_cell`.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Collection, Mapping

import torch

from bench.train.checkpoint import CheckpointError
from bench.core.config import CellConfig
from bench.data import dataset_kind, load_dataset
from bench.schedule.leases import Heartbeat, Leases, my_owner
from bench.core.record import Record
from bench.trickapi.registry import create_trick
from bench.train.runtime import pick_device
from bench.schedule.runner import (STOP, _put_once, _restart_from_scratch, cell_threads,
                                   curve_interval, curve_probe, disallowed_record, evaluate,
                                   failed_record)
from bench.store import Store
from bench.train import Trainer
from bench.train.fused import CellStreams, FusedTrainer, NotFusable, group_refusal
from bench.train.fused.engine import FUSED_KINDS
from bench.train.fused.tricks import refusal

NO_FUSE_ENV = "GANBENCH_NO_FUSE"


def fusing_enabled(fuse: bool | None = None) -> bool:
    if fuse is not None:
        return fuse
    if os.environ.get("GANBENCH_TENSORBOARD"):  # live curves come from cells run one at a time
        return False
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

    data = load_dataset(cell.data.name, resolution=cell.data.resolution)
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
# (benchmarks/engine.py: ring8 1.2-1.5x alone at K = 8..64, 0.94x at K = 512) while memory grows
# with K; a GPU keeps gaining up to hundreds
MAX_GROUP = {"cpu": 64, "cuda": 512}
# nets (data kind, NetConfig.arch) that by default fuse on a CPU: those whose fused step measured
# faster per core than one cell per worker (docs/fused.md: the 2-D MLP, ring8 3x128, 1.2-1.5x;
# the DCGAN-style conv nets of digits 16x16, 1.3-1.4x); PacGAN's nets measured 0.7-1.0x there,
# so on a CPU they train alone unless fusing is asked for (`fuse=True`); on a GPU every fusable
# group fuses
CPU_FUSE_NETS = frozenset({("2d", ""), ("image", "")})


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
        slow = [g for g in plan.groups
                if (dataset_kind(g[0].data.name), g[0].net.arch) not in CPU_FUSE_NETS]
        for g in slow:
            plan.groups.remove(g)
            plan.alone.update({c.cell_id: f"on a CPU, {_nets_name(g[0])} nets fused measured no "
                                          f"faster than one cell per worker (docs/fused.md); "
                                          f"fused on a GPU" for c in g})
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


@dataclass
class GroupResult:
    records: dict[str, Record | None] = field(default_factory=dict)  # None: interrupted
    left: dict[str, str] = field(default_factory=dict)  # cell id -> why run_cell should run it


def run_fused_group(cells: list[CellConfig], store: Store, *, eval_spec=None,
                    device: str | None = None, progress: bool = False,
                    curve_every: int | None = None, retry: Collection[str] = (),
                    threads: int | None = None,
                    seen: Mapping[str, float] | None = None) -> GroupResult:
    """Train `cells` (one planned group) as one fused step; store one record per cell as
    `run_cell` would. Cells already stored (and not retried) return their record; cells whose
    lease another process holds, or that turn out not to fuse once built, are left to the
    caller with the reason."""
    out = GroupResult()
    todo: list[CellConfig] = []
    for cell in cells:
        existing = store.get(cell.cell_id)
        redo_id = (existing.created_at if existing is not None else None) if seen is None \
            else seen.get(cell.cell_id)
        redo = tuple(retry) if redo_id is not None else ()
        if existing is not None and (existing.status not in redo
                                     or existing.created_at != redo_id):
            out.records[cell.cell_id] = existing
            continue
        blocked = disallowed_record(cell)
        if blocked is not None:
            out.records[cell.cell_id] = existing if existing is not None else \
                _put_once(store, blocked)
            continue
        todo.append((cell, redo, redo_id))  # type: ignore[arg-type]
    if not todo:
        return out
    owner = my_owner()
    with Leases(store.db_path) as leases, contextlib.ExitStack() as beats:
        taken: list[CellConfig] = []
        for cell, redo, redo_id in todo:  # type: ignore[misc]
            state, lease = leases.acquire(cell.cell_id, owner, redo=redo, redo_created=redo_id)
            if state == "stored":
                out.records[cell.cell_id] = store.get(cell.cell_id)
            elif state == "busy":
                out.left[cell.cell_id] = f"being trained by {lease.owner}"
            else:
                beats.enter_context(Heartbeat(store.db_path, cell.cell_id, owner))
                taken.append(cell)
        try:
            if taken:
                _train_group(taken, store, out, eval_spec=eval_spec, device=device,
                             progress=progress, curve_every=curve_every,
                             threads=threads or cell_threads())
        finally:
            for cell in taken:
                leases.release(cell.cell_id, owner)
    return out


def _train_group(cells: list[CellConfig], store: Store, out: GroupResult, *, eval_spec, device,
                 progress, curve_every, threads: int) -> None:
    if eval_spec is None:
        from bench.metrics import EvalSpec

        eval_spec = EvalSpec()
    dev = pick_device(device)
    threads_before = torch.get_num_threads()
    torch.set_num_threads(threads)
    histories: dict[str, tuple[list, bool]] = {}  # cell id -> (history, a record is replaced)
    try:
        data = load_dataset(cells[0].data.name, resolution=cells[0].data.resolution)
        built: list[tuple[Trainer, dict]] = []
        for cell in cells:
            previous = store.get(cell.cell_id)
            history = list(previous.history) if previous else []
            if previous is not None:
                history.append({"event": "retry", "at": time.time(), "status": previous.status,
                                "reason": previous.reason, "step": previous.step,
                                "metrics": previous.metrics, "error": previous.error})
            histories[cell.cell_id] = (history, previous is not None)

            def build(cell=cell) -> Trainer:
                # built on the CPU: the engine draws the CPU cells' streams on any device
                tr = Trainer(cell, workdir=store.cell_dir(cell.cell_id), device="cpu",
                             progress=False, dataset=data)
                every = curve_interval(cell.train.steps, curve_every)
                if every > 0:
                    tr.set_probe(curve_probe(data.kind), every)
                return tr

            tr = build()
            try:
                tr.try_resume()
            except CheckpointError as exc:
                history.append(_restart_from_scratch(tr, exc))
                tr = build()
            built.append((tr, CellStreams.capture()))
        by_step: dict[int, list[tuple[Trainer, dict]]] = {}
        for tr, st in built:  # resumed cells fuse with cells at the same step
            by_step.setdefault(tr.step, []).append((tr, st))
        for part in by_step.values():
            trainers = [tr for tr, _ in part]
            why = group_refusal(trainers)
            if why or len(part) < 2:
                for tr in trainers:
                    out.left[tr.cell.cell_id] = why or "no other cell at its step"
                continue
            _train_part(trainers, [st for _, st in part], store, out, histories, eval_spec,
                        dev)
    finally:
        torch.set_num_threads(threads_before)


def _train_part(trainers, states, store: Store, out: GroupResult, histories, eval_spec,
                dev) -> None:
    try:
        engine = FusedTrainer(trainers, states, device=dev)
    except NotFusable as exc:
        for tr in trainers:
            out.left[tr.cell.cell_id] = str(exc)
        return
    engine.should_stop = STOP.is_set
    try:
        results = engine.train()
    except Exception as exc:
        # the group raised: each cell trains alone from its last checkpoint (the caller runs
        # `run_cell`), so a fault stays the one cell's, as when every cell trains alone
        last = " ".join(traceback.format_exception_only(type(exc), exc)[-1].split())[:200]
        print(f"ganbench: warning: a fused group of {len(trainers)} cells raised {last}; its "
              f"cells train alone from their checkpoints", file=sys.stderr, flush=True)
        for tr in trainers:
            out.left[tr.cell.cell_id] = f"its fused group raised {last}"
        return
    for k, (tr, (status, reason)) in enumerate(zip(trainers, results)):
        if status == "interrupted":
            out.records[tr.cell.cell_id] = None
            continue
        try:
            record = engine.make_record(k, status, reason)
            if status == "done":
                evaluate(tr, eval_spec, record)
        except Exception as exc:
            last = traceback.format_exception_only(type(exc), exc)[-1].strip()
            record = failed_record(tr.cell, last, traceback.format_exc(), tr)
        _store(store, record, histories[tr.cell.cell_id], out)


def _store(store: Store, record: Record, history: tuple[list, bool], out: GroupResult) -> None:
    events, replaces = history
    record.history = events + record.history
    if replaces:
        store.put(record, replace=True)
        out.records[record.cell_id] = record
    else:
        out.records[record.cell_id] = _put_once(store, record)


# -- which tricks fuse (docs/fused.md's table is this, checked by tests/test_fused_scheduler.py) --
# param settings whose fused form differs from the default's (refused, or refused at default)
PARAM_CASES: dict[str, list[dict]] = {
    "gradient_penalty": [{"variant": "dragan"}, {"interval": 4}],
    "unrolled": [{"g_objective": "value"}, {"first_order": True}],
}


def _probe_cell(name: str, params: dict, kind: str = "2d") -> CellConfig:
    from bench.core.config import DataConfig, NetConfig, OptimConfig, TrainConfig
    from bench.schedule.grid import full_spec

    opt = OptimConfig(lr=1e-3)
    data, width = (DataConfig("ring8"), 16) if kind == "2d" else (DataConfig("digits"), 8)
    return CellConfig(data=data, net=NetConfig(z_dim=8, width=width, depth=2),
                      train=TrainConfig(steps=10, batch_size=16, g_optim=opt, d_optim=opt),
                      tricks=(full_spec(name, params),), seed=0)


NOT_APPLICABLE = "not applicable"


def trick_support(name: str, params: dict | None = None, kind: str = "2d") -> str | None:
    """Why a cell of data `kind` ('2d': ring8, 'image': digits 16x16) with this trick (at
    `params`) trains alone (None: it fuses): the trick does not apply to that kind
    (NOT_APPLICABLE), a hook without a fused form, or a layer its `build` makes that has
    none."""
    from bench.trickapi.registry import get_trick_class

    params = params or {}
    if kind not in get_trick_class(name).applies_to:
        return NOT_APPLICABLE
    why = refusal(create_trick(name, **params))
    if why:
        return why
    cell = _probe_cell(name, params, kind)
    blocked = disallowed_record(cell)
    if blocked is not None:  # e.g. it needs a partner trick: judged with it, in its grid
        return f"not judged alone ({blocked.reason})"
    return layer_refusal(cell)


def support_table() -> str:
    """The Markdown table of docs/fused.md: every built-in trick, whether its 2-D and its image
    cells fuse, and the reason when they do not (plus the param settings of PARAM_CASES)."""
    from bench.trickapi.registry import get_trick_class, list_tricks

    def shown(why: str | None) -> str:
        if why is None:
            return "yes"
        if why == NOT_APPLICABLE:
            return "n/a"
        return "no: " + why.replace("|", "/")

    rows = ["| trick | 2-D cells | image cells |", "|---|---|---|"]
    for name in list_tricks():
        if not get_trick_class(name).__module__.startswith("tricks."):
            continue  # a plugin's: judged when it is installed (`trick_support`)
        for params in [{}] + PARAM_CASES.get(name, []):
            label = name + (" (" + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")"
                            if params else "")
            rows.append(f"| `{label}` | {shown(trick_support(name, params, '2d'))} | "
                        f"{shown(trick_support(name, params, 'image'))} |")
    return "\n".join(rows) + "\n"


DOC_START, DOC_END = "<!-- fused-tricks: start -->", "<!-- fused-tricks: end -->"


def write_doc(path) -> bool:
    """Put `support_table()` between the markers of `path`; True when it changed."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    head, rest = text.split(DOC_START, 1)
    _, tail = rest.split(DOC_END, 1)
    new = f"{head}{DOC_START}\n{support_table()}{DOC_END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":  # python -m bench.schedule.fused_group [docs/fused.md]
    import sys

    if len(sys.argv) > 1:
        print("updated" if write_doc(sys.argv[1]) else "up to date", sys.argv[1])
    else:
        print(support_table(), end="")
