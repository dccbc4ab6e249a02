"""A unit of work (a cell, or a fused group of cells) as a worker runs it and as a driver reads
its outcome; shared by the process pool (bench/schedule/executor.py) and Ray
(bench/schedule/ray_executor.py), so both apply the same rules per cell:

- worker side, `run_unit(payload, store, device, opts)`: a cell (`CellConfig.to_dict()`) goes to
  `run_cell`, a group (`{"group": [cell dicts]}`) to `run_fused_group`; the reply is a small
  dict (`stored` / `busy` / `stopped` / `error` for a cell; `group` with the cells it stored and
  left for a group);
- driver side, `settle_cell` / `settle_group`: a reply, or the death of the unit's worker or
  task (`Death`), becomes the records to yield, the cells to queue again (a unit whose worker
  died is retried `DEATHS_RETRIED` times, each cell from its checkpoint; cells a group left run
  alone), cells to defer (leased by another process), and `failed` records;
  `collect_deferred` picks up deferred cells once their holder stored them.
"""
from __future__ import annotations

import sys
import time
import traceback
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterator

from bench.core.config import CellConfig
from bench.core.record import Record
from bench.schedule.fused.group import run_fused_group
from bench.schedule.fused.plan import FusedGroup
from bench.schedule.runner import (STOP, CellBusy, failed_record, holders_record, run_cell,
                                   store_failed)
from bench.store import Store

DEATHS_RETRIED = 1  # a unit whose worker (or Ray task) died is retried this many times
BUSY_POLL_S = 2.0  # how often a cell leased by another process is looked at again


def payload(unit: CellConfig | FusedGroup) -> dict:
    """What a worker or Ray task receives for a unit (picklable, plain data)."""
    if isinstance(unit, FusedGroup):
        return {"group": [c.to_dict() for c in unit.cells]}
    return unit.to_dict()


# -- worker side ----------------------------------------------------------------------------------
def run_unit(unit_json: dict, store: Store, device: str, opts: dict) -> dict:
    """Train one unit (a cell or a group, `payload`) into `store`; the reply for the driver.
    A group's reply says which cells it stored, which it left to run alone (and why), and
    whether it stopped (Ctrl-C / SIGTERM: its cells checkpointed)."""
    try:
        if "group" in unit_json:
            cells = [CellConfig.from_dict(c) for c in unit_json["group"]]
            out = run_fused_group(cells, store, device=device, **opts)
            return {"state": "group",
                    "stored": [c for c, r in out.records.items() if r is not None],
                    "left": dict(out.left),
                    "stopped": any(r is None for r in out.records.values())}
        cell = CellConfig.from_dict(unit_json)
        try:
            record = run_cell(cell, store, device=device, progress=False, wait=False, **opts)
        except CellBusy as exc:
            return {"state": "busy", "owner": exc.lease.owner}
        return {"state": "stored" if record is not None else "stopped"}
    except Exception as exc:  # e.g. the store itself cannot be written
        return {"state": "error", "reason": f"{type(exc).__name__}: {exc}",
                "error": traceback.format_exc()}


def stopped(reply: dict | None) -> bool:
    """The worker that sent `reply` stopped (a signal): it exits after sending it."""
    return reply is not None and (reply["state"] == "stopped" or bool(reply.get("stopped")))


# -- driver side ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Death:
    """How a unit's worker or task died: `warning` is printed (\"<warning> while running
    ...; retrying\"), `reason` goes into the `failed` record once retries are spent."""
    warning: str  # e.g. "worker killed by SIGKILL"
    reason: str  # e.g. "worker process killed by SIGKILL"


def _requeue(queue: deque, cells: list[CellConfig]) -> None:
    """`cells` first in the queue: as a group when more than one is left."""
    queue.appendleft(FusedGroup(tuple(cells)) if len(cells) > 1 else cells[0])


def settle_cell(cell: CellConfig, reply: dict | None, store: Store, *, death: Death | None,
                deferred: dict, deaths: Counter, queue: deque,
                busy_poll_s: float = BUSY_POLL_S) -> Record | None:
    """A cell's reply (None: its worker died, as `death` says): the record to yield, if any."""
    if reply is None:
        assert death is not None
        deaths[cell.cell_id] += 1
        if deaths[cell.cell_id] <= DEATHS_RETRIED:
            print(f"ganbench: warning: {death.warning} while running cell {cell.cell_id} "
                  f"({cell.data.name} {cell.label} seed {cell.seed}); retrying it",
                  file=sys.stderr, flush=True)
            queue.appendleft(cell)
            return None
        return store_failed(store, failed_record(
            cell, f"{death.reason} ({deaths[cell.cell_id]} times)"))
    state = reply["state"]
    if state == "stored":
        return store.get(cell.cell_id)
    if state == "busy":
        deferred[cell.cell_id] = (cell, time.monotonic() + busy_poll_s)
        return None
    if state == "error":
        return store_failed(store, failed_record(cell, reply["reason"], reply["error"]))
    if not STOP.is_set():  # the worker alone was signalled: it checkpointed; the cell resumes
        queue.appendleft(cell)
    return None  # stopped by Ctrl-C / SIGTERM: its checkpoint is on disk


def settle_group(group: FusedGroup, reply: dict | None, store: Store, *, death: Death | None,
                 deaths: Counter, queue: deque, seen: dict[str, float]) -> list[Record]:
    """A fused group's reply, read per cell as `settle_cell` reads a cell's: stored cells are
    yielded; cells it left run alone; a dead worker's group is retried `DEATHS_RETRIED` times
    (each cell resumes from its checkpoint), then its unstored cells are stored `failed`; a
    worker stopped alone (a signal to it, not to the run) leaves its cells to resume as a
    group."""
    if reply is None:  # the worker died mid-group (OOM killer, kill -9, segfault, node lost)
        assert death is not None
        done = {c.cell_id: holders_record(store, c.cell_id, seen) for c in group.cells}
        todo = [c for c in group.cells if done[c.cell_id] is None]
        for c in todo:
            deaths[c.cell_id] += 1
        if todo and max(deaths[c.cell_id] for c in todo) <= DEATHS_RETRIED:
            print(f"ganbench: warning: {death.warning} while running a fused group of "
                  f"{len(group)} cells ({group.cells[0].data.name} {group.cells[0].label}, "
                  f"...); retrying them", file=sys.stderr, flush=True)
            _requeue(queue, todo)
            return []
        stored = [r for r in done.values() if r is not None]
        return stored + [store_failed(store, failed_record(
            c, f"{death.reason} ({deaths[c.cell_id]} times)")) for c in todo]
    if reply["state"] == "error":
        return [store_failed(store, failed_record(c, reply["reason"], reply["error"]))
                for c in group.cells]
    if reply["state"] == "stopped":  # stopped before it began
        rest = list(group.cells)
        records = []
    else:
        stored = set(reply["stored"])
        records = [store.get(cid) for cid in group.cell_ids if cid in stored]
        records = [r for r in records if r is not None]
        left = [c for c in group.cells if c.cell_id in reply["left"]]
        queue.extendleft(reversed(left))  # each alone, first
        rest = [c for c in group.cells if c.cell_id not in stored
                and c.cell_id not in reply["left"]]
    if rest and not STOP.is_set():  # the worker alone was signalled: its cells resume
        _requeue(queue, rest)
    return records


def collect_deferred(store: Store, deferred: dict, queue: deque,
                     seen: dict[str, float]) -> Iterator[Record]:
    """Cells leased by another process: yield the ones it stored; requeue the rest when their
    poll time comes (the lease is taken over if its owner died). A retried cell's old record
    (`seen`) is not its result."""
    now = time.monotonic()
    for cid, (cell, due) in list(deferred.items()):
        record = holders_record(store, cid, seen)
        if record is not None:  # stored by the process that held the lease: final for this run
            del deferred[cid]
            yield record
        elif due <= now:
            del deferred[cid]
            queue.append(cell)
    if not queue and deferred:
        time.sleep(0.2)
