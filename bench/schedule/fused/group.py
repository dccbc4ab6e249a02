"""Training a group of cells fused (bench/train/fused), stored exactly as cells run one at a time:
one lease, one checkpoint and one record per cell. The entry beside `run_cell` that the
executors (bench/schedule/units.py: the in-process loop, the pool, Ray) call; see
docs/fused.md. Which cells form a group is bench/schedule/fused/plan.py's.

`run_fused_group(cells, store, ...)` trains one group and returns what it stored, and the cells
it left to `run_cell` (busy elsewhere, refused once built, or at another step).
"""
from __future__ import annotations

import contextlib
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Collection, Mapping

import torch

from bench.train.checkpoint import CheckpointError, DiskFull
from bench.core.config import CellConfig
from bench.data import load_dataset
from bench.schedule.leases import Heartbeat, Leases, my_owner
from bench.core.record import Record
from bench.train.runtime import pick_device
from bench.schedule.runner import (STOP, _put_once, _restart_from_scratch, cell_threads,
                                   curve_interval, curve_probe, disallowed_record, evaluate,
                                   failed_record)
from bench.store import Store
from bench.store.errors import StoreBusy
from bench.train import Trainer
from bench.train.fused import CellStreams, FusedTrainer, NotFusable, group_refusal

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
        _train_and_store(engine, trainers, store, out, histories, eval_spec)
    finally:  # each cell's TensorBoard run (closed before a cell left here trains alone)
        for tr in trainers:
            tr.close_board()


def _train_and_store(engine, trainers, store: Store, out: GroupResult, histories,
                     eval_spec) -> None:
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
            tr.board_final(record)  # live curves: the scored metrics and samples
        except (DiskFull, StoreBusy):  # not the cell's fault: nothing stored, as run_cell does
            raise
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
