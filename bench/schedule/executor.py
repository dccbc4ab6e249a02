"""Run many cells: in this process, or on a pool of worker processes. Stored cells are skipped
and interrupted cells resume from their checkpoints, so a run can be restarted at any time.

Fault behaviour (see the README, "When things go wrong"):
- a cell that raises is stored `failed` (runner); the grid goes on;
- a worker killed by the OS: its cell is retried once on a fresh worker, then stored `failed`;
- a cell whose lease another live process holds is deferred and picked up when that process
  stores it (or dies: the lease is then taken over);
- Ctrl-C (SIGINT) or SIGTERM: no new cell starts, running cells checkpoint at their next step,
  and run_cells raises Stopped (a KeyboardInterrupt naming the signal) within seconds;
- workers die with their parent (PR_SET_PDEATHSIG on Linux, and a parent-pid watchdog), so a
  kill -9 of the main process leaves no orphan training; a rerun takes their leases over.

Fused groups (bench/schedule/fused/plan.py, docs/fused.md): cells equal but for seed and
learning rates, with tricks the fused engine supports, are handed to one worker as a
`FusedGroup` and trained as one vectorised step; each still has its own lease, checkpoint and
record, so every rule above holds per cell (a killed worker's group is retried once; cells a
group leaves, e.g. leased elsewhere or resumed at another step, run alone). `fuse=False`
(`run --no-fuse`, GANBENCH_NO_FUSE=1) trains every cell alone. The Ray executor
(bench/schedule/ray_executor.py) hands out the same units, one Ray task each.

What a worker does with a unit and how its reply (or death) is read is shared with Ray
(bench/schedule/units.py); stop signals and worker lifetimes are in bench/schedule/signals.py.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from multiprocessing.connection import wait as wait_any
from pathlib import Path
from typing import Collection, Iterable, Iterator

from bench.core.config import CellConfig
from bench.core.record import Record
from bench.data import dataset_kind
from bench.schedule.fused.group import run_fused_group
from bench.schedule.fused.plan import FusedGroup, group_device, work_units
from bench.schedule.placement import (choose_device, default_cells_per_gpu, gpu_index,
                                      visible_gpus)
from bench.schedule.runner import STOP, CellBusy, run_cell
from bench.schedule.signals import (STOP_SIGNALS, Stopped, die_with_parent,
                                    ignoring_stop_signals, stop_on_signals, stopped_error)
from bench.schedule.units import (BUSY_POLL_S, DEATHS_RETRIED, Death, collect_deferred,
                                  payload, run_unit, settle_cell, settle_group, stopped)
from bench.store import Store
from bench.store.pause_guard import defer_terminal_stop
from bench.trickapi.registry import quiet_plugin_warnings

__all__ = ["run_cells", "Stopped", "visible_gpus", "default_workers"]

WORKER_DEATHS_RETRIED = DEATHS_RETRIED  # a cell whose worker was killed is retried this often
STOP_GRACE_S = 30.0  # after Ctrl-C, how long running cells get to checkpoint
_collect_deferred = collect_deferred  # the name tests/test_scheduler_leases.py imports


def default_workers() -> int:
    from bench.schedule.placement import default_workers as for_machine

    return for_machine(visible_gpus())


def run_cells(cells: Iterable[CellConfig], store_root: Path, *, workers: int = 1,
              eval_spec=None, device: str | None = None, progress: bool = True,
              curve_every: int | None = None, retry: Collection[str] = (),
              cells_per_gpu: int | None = None, executor: str = "local",
              address: str | None = None, fuse: bool | None = None) -> Iterator[Record]:
    """Yield each cell's record as it is stored (stored ones first, without retraining).
    Records whose status is in `retry` (e.g. {"failed", "diverged"}) are trained again.
    Raises Stopped (a KeyboardInterrupt) after Ctrl-C or SIGTERM once running cells have
    checkpointed.
    `executor="ray"` runs each unit (a cell or a fused group) as a Ray task
    (bench/schedule/ray_executor.py; `address` of a cluster, or None for a local Ray).
    `fuse`: train fusable cells as fused groups (None: unless GANBENCH_NO_FUSE=1; on a CPU
    only the nets that measured a win, docs/fused.md)."""
    cells = list({c.cell_id: c for c in cells}.values())  # a cell listed twice runs once
    retry = tuple(retry)
    # `seen`: when each retried record was stored, as seen now; only that record is redone, so
    # a newer record another run stores meanwhile (even `failed`) is kept, not trained twice
    seen: dict[str, float] = {}
    with Store(store_root) as store:
        todo = []
        for cell in cells:
            record = store.get(cell.cell_id)
            if record is not None and record.status not in retry:
                yield record
            else:
                todo.append(cell)
                if record is not None:
                    seen[cell.cell_id] = record.created_at
    if not todo:
        return
    from tqdm.auto import tqdm

    # disable=None: bars only on a terminal, never as kilobytes of '\r' lines in a log file
    bar = tqdm(total=len(todo), desc="cells", unit="cell", dynamic_ncols=True, leave=False,
               disable=None if progress else True)
    opts = dict(eval_spec=eval_spec, curve_every=curve_every, retry=retry, seen=seen)
    try:
        with stop_on_signals():
            if executor == "ray":
                from bench.schedule.ray_executor import run_ray

                run = run_ray(todo, Path(store_root), address=address, device=device,
                              cells_per_gpu=cells_per_gpu, opts=opts, fuse=fuse)
            else:
                units, _ = work_units(todo, workers=max(1, workers), device=device,
                                      gpus=visible_gpus(), fuse=fuse)
                if workers <= 1:
                    run = _run_here(units, Path(store_root), device, progress, opts)
                else:
                    run = _run_pool(units, Path(store_root), workers, device, cells_per_gpu,
                                    opts)
            for record in run:
                bar.update(1)
                yield record
            if STOP.is_set():
                raise stopped_error()
    finally:
        bar.close()


def _run_here(todo: list, root: Path, device, progress, opts) -> Iterator[Record]:
    """`todo`: cells and FusedGroups (work_units)."""
    gpus = visible_gpus()
    with Store(root) as store:
        queue = deque(todo)
        deferred: dict[str, tuple[CellConfig, float]] = {}
        while (queue or deferred) and not STOP.is_set():
            if not queue:
                yield from collect_deferred(store, deferred, queue, opts["seen"])
                continue
            cell = queue.popleft()
            if isinstance(cell, FusedGroup):
                dev = group_device(gpus=gpus, device=device, gpu_load=[], cells_per_gpu=1)
                out = run_fused_group(list(cell.cells), store, device=dev, **opts)
                for c in cell.cells:
                    if out.records.get(c.cell_id) is not None:
                        yield out.records[c.cell_id]
                # cells the group left (leased elsewhere, at another step): each alone
                queue.extendleft(reversed([c for c in cell.cells if c.cell_id in out.left]))
                continue
            dev = choose_device(dataset_kind(cell.data.name), gpus=gpus, device=device,
                                gpu_load=[], cells_per_gpu=1)
            try:
                # per-step bars only on a terminal: a log file gets no '\r' lines
                record = run_cell(cell, store, device=dev, wait=False,
                                  progress=progress and sys.stderr.isatty(), **opts)
            except CellBusy:
                deferred[cell.cell_id] = (cell, time.monotonic() + BUSY_POLL_S)
                continue
            if record is not None:
                yield record


# -- the worker pool ------------------------------------------------------------------------------
def _worker_main(conn, store_root: str, parent_pid: int, opts: dict, stop_event) -> None:
    die_with_parent(parent_pid)
    quiet_plugin_warnings()
    # A terminal Ctrl-C (or Slurm's SIGTERM) reaches the whole process group; the parent also
    # sets `stop_event` (a signal sent while we were still booting would be lost). Either way:
    # finish the current step, checkpoint, report "stopped".
    for sig in STOP_SIGNALS:  # Slurm and `docker stop` signal every process, not just ours
        signal.signal(sig, lambda *_: STOP.set())
    threading.Thread(target=lambda: (stop_event.wait(), STOP.set()), daemon=True,
                     name="stop-watch").start()
    with defer_terminal_stop(), Store(store_root) as store:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg is None:
                return
            unit_json, device = msg
            if STOP.is_set():  # queued before the stop: leave it for the next run
                conn.send({"state": "stopped"})
                return
            reply = run_unit(unit_json, store, device, opts)
            conn.send(reply)
            if stopped(reply):  # the parent's stop, or a signal to us alone: the parent
                return  # replaces us (and resumes the cell) unless it is stopping too


class _Worker:
    def __init__(self, ctx, store_root: Path, opts: dict, stop_event):
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, daemon=True,
                                   args=(child, str(store_root), os.getpid(), opts, stop_event))
        # Started with SIGINT/SIGTERM ignored (inherited across exec); _worker_main installs
        # the real handlers.
        with ignoring_stop_signals():
            self.process.start()
        child.close()
        self.cell: CellConfig | FusedGroup | None = None  # what it trains now
        self.device: str | None = None

    def send(self, cell: CellConfig | FusedGroup, device: str) -> None:
        self.cell, self.device = cell, device
        try:
            self.conn.send((payload(cell), device))
        except OSError:
            pass  # it died just now: its sentinel fires and the cell is retried

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _run_pool(todo: list, root: Path, workers: int, device, cells_per_gpu,
              opts: dict) -> Iterator[Record]:
    """`todo`: cells and FusedGroups (work_units), one at a time per worker."""
    ctx = mp.get_context("spawn")  # fork is unsafe with torch threads
    gpus = visible_gpus()
    per_gpu = cells_per_gpu or default_cells_per_gpu(workers, gpus)
    stop_event = ctx.Event()
    pool = [_Worker(ctx, root, opts, stop_event) for _ in range(min(workers, len(todo)))]
    queue: deque[CellConfig] = deque(todo)
    deferred: dict[str, tuple[CellConfig, float]] = {}
    deaths: Counter[str] = Counter()
    stop_sent, stop_deadline = False, 0.0
    with Store(root) as store:
        try:
            while queue or deferred or any(w.cell for w in pool):
                if STOP.is_set():
                    queue.clear()
                    deferred.clear()
                    if not stop_sent:  # e.g. a SIGINT sent to the main pid alone
                        stop_sent = True
                        stop_event.set()
                        stop_deadline = time.monotonic() + STOP_GRACE_S
                    if time.monotonic() > stop_deadline:
                        break
                if not queue and deferred:
                    yield from collect_deferred(store, deferred, queue, opts["seen"])
                for i, w in enumerate(pool):  # an idle worker killed meanwhile is replaced
                    if w.cell is None and not w.process.is_alive() and not STOP.is_set():
                        pool[i] = _Worker(ctx, root, opts, stop_event)
                _dispatch(pool, queue, gpus, device, per_gpu)
                busy = [w for w in pool if w.cell is not None]
                if not busy:
                    continue
                ready = wait_any([w.conn for w in busy] + [w.process.sentinel for w in busy],
                                 timeout=1.0)
                for w in busy:
                    if w.conn in ready or w.process.sentinel in ready:
                        yield from _finish(w, store, deferred, deaths, queue, opts["seen"])
                        if not w.process.is_alive() and not STOP.is_set():
                            pool[pool.index(w)] = _Worker(ctx, root, opts, stop_event)
        finally:
            for w in pool:
                w.stop()
            deadline = time.monotonic() + 5
            for w in pool:
                w.process.join(timeout=max(0.1, deadline - time.monotonic()))
                if w.process.is_alive():
                    w.process.kill()
                    w.process.join()


def _dispatch(pool: list[_Worker], queue: deque, gpus: int, device, per_gpu: int) -> None:
    load = [0] * gpus
    for w in pool:
        i = gpu_index(w.device) if w.cell is not None else None
        if i is not None and i < gpus:
            load[i] += 1
    for w in pool:
        if w.cell is not None or not queue:
            continue
        for _ in range(len(queue)):  # the first queued cell that has a device free now
            cell = queue.popleft()
            if isinstance(cell, FusedGroup):
                dev = group_device(gpus=gpus, device=device, gpu_load=load,
                                   cells_per_gpu=per_gpu)
            else:
                dev = choose_device(dataset_kind(cell.data.name), gpus=gpus, device=device,
                                    gpu_load=load, cells_per_gpu=per_gpu)
            if dev is None:
                queue.append(cell)
                continue
            if gpu_index(dev) is not None:
                load[gpu_index(dev)] += 1
            w.send(cell, dev)
            break


def _finish(w: _Worker, store: Store, deferred: dict, deaths: Counter,
            queue: deque, seen: dict[str, float]) -> list[Record]:
    """Handle a worker's reply or death (bench/schedule/units.py); the records to yield."""
    unit, w.cell = w.cell, None
    reply = None
    try:
        if w.conn.poll():
            reply = w.conn.recv()
    except (EOFError, OSError):
        reply = None
    death = None
    if reply is None:  # the worker died mid-unit (OOM killer, kill -9, segfault)
        w.process.join(timeout=5)
        why = _exit_reason(w.process.exitcode)
        death = Death(f"worker {why}", f"worker process {why}")
    elif stopped(reply) and not STOP.is_set():  # a signal to it alone: it checkpointed and
        w.process.join(timeout=5)  # exits; a fresh worker resumes its cells
    if isinstance(unit, FusedGroup):
        return settle_group(unit, reply, store, death=death, deaths=deaths, queue=queue,
                            seen=seen)
    record = settle_cell(unit, reply, store, death=death, deferred=deferred, deaths=deaths,
                         queue=queue)
    return [record] if record is not None else []
