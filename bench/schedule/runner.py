"""Run one cell end to end: skip if stored, take the cell's lease, resume from its checkpoint if
interrupted, train, score, and write exactly one record in one transaction. Safe to call again
after any interruption, and from several processes or machines at once (the lease makes sure one
trainer runs per cell).

Faults stay inside the cell: an exception becomes a `failed` record (one-line reason, traceback
in `record.error`); an unreadable checkpoint, or one whose sha256 is not the recorded one, is
moved aside and the cell falls back to its previous checkpoint (`checkpoint.prev.pt`, verified
the same way) or restarts from step 0 (a `fallback` / `restart` event in `record.history`).

Fencing (`bench.store.integrity`): every checkpoint, sample and record write checks that this
process still holds the cell's lease at that moment. A holder that lost it (paused past the lease
timeout and taken over) stops at its next step, writes nothing, says so in one line and raises
LeaseLostError (a CellBusy: the executors then wait for the new holder's record)."""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Callable, Collection, Mapping

import torch

from bench.core.config import CellConfig
from bench.core.record import Record
from bench.data import dataset_kind, dataset_traits, load_dataset
from bench.schedule.leases import Heartbeat, Lease, Leases, my_owner
from bench.store import Store, StoreError
from bench.store.errors import StoreBusy
from bench.store.integrity import LeaseLost, fence_for
from bench.train import Trainer
from bench.train.checkpoint import (CheckpointError, DiskFull, load as load_checkpoint,
                                    previous_path, remove_stale_temporaries)
from bench.train.runtime import numerics, pick_device
from bench.trickapi.registry import create_trick, typed_conflict_reasons

# Set by Ctrl-C handlers and the scheduler: trainers stop at the next step, checkpoint and return
# "interrupted". One per process (pool workers have their own).
STOP = threading.Event()
LEASE_POLL_S = 1.0


class CellBusy(RuntimeError):
    """Another live process holds the cell's lease."""

    def __init__(self, lease: Lease):
        super().__init__(f"cell {lease.cell_id} is being trained by {lease.owner}")
        self.lease = lease


class LeaseLostError(CellBusy):
    """This process lost the cell's lease while training it and stopped without writing."""

    def __init__(self, lease: Lease, message: str):
        RuntimeError.__init__(self, message)
        self.lease = lease


def cell_threads() -> int:
    """Torch threads of one cell on the CPU ($GANBENCH_CELL_THREADS, default 1). Pinned for
    `train`, in-process `run` and pool workers alike: CPU kernels may sum in a different order
    with another thread count, so the count is part of the cell (TrainConfig.threads, in its id
    when not 1; grids and `train` read it from here). Parallelism comes from workers."""
    from bench.core.config import env_threads

    return env_threads()


def rerun_difference(old: Record, new: Record) -> str | None:
    """One line when a rerun of a stored cell did not reproduce its stored result bit for bit,
    naming what differed where the records tell (numerics of the machine, metric protocol),
    else None."""
    if old.status != "done" or new.status != "done" or (
            old.metrics == new.metrics and old.curves == new.curves):
        return None
    shared = [m for m in new.metrics if m in old.metrics and old.metrics[m] != new.metrics[m]]
    what = ", ".join(f"{m} {new.metrics[m]:.6g} vs {old.metrics[m]:.6g} stored"
                     for m in shared[:3]) or "its curves"
    was, now = (old.runtime or {}).get("numerics"), (new.runtime or {}).get("numerics")
    causes = []
    if was is None:
        causes.append("the stored record predates numerics fingerprints, so it cannot say "
                      "whether it ran on a machine that computes the same bits")
    elif was.get("fingerprint") != (now or {}).get("fingerprint"):
        causes.append(f"it was computed with other kernels ({was.get('cpu_capability')} "
                      f"{was.get('cpu')}, fingerprint {was.get('fingerprint')}; here "
                      f"{(now or {}).get('cpu_capability')}, {(now or {}).get('fingerprint')})")
    wc = (old.protocol or {}).get("classifier", {}) or {}
    nc = (new.protocol or {}).get("classifier", {}) or {}
    if wc.get("weights_sha256") and wc.get("weights_sha256") != nc.get("weights_sha256"):
        causes.append("its feature classifier's weights differ (trained on another machine: "
                      "see protocol.classifier.weights_sha256)")
    if not causes:
        causes.append("same recorded numerics and protocol: please report this")
    return (f"ganbench: note: this rerun of cell {new.cell_id} differs from its stored record "
            f"({what}): " + "; ".join(causes))


def disallowed_record(cell: CellConfig) -> Record | None:
    """A `conflict` / `not-applicable` record when the cell's tricks may not run, else None.
    Bad trick names or params raise TrickError: those are input errors, not grid results."""
    kind, traits = dataset_kind(cell.data.name), dataset_traits(cell.data.name)
    tricks = [create_trick(t.name, **t.param_dict) for t in cell.tricks]
    reasons = typed_conflict_reasons(tricks, kind, traits, cell.net.arch)
    if not reasons:
        return None
    only_data = all(why == "data" for why, _ in reasons)
    return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                  config=cell.to_dict(), status="not-applicable" if only_data else "conflict",
                  reason="; ".join(text for _, text in reasons))


def failed_record(cell: CellConfig, reason: str, error: str = "",
                  trainer: Trainer | None = None) -> Record:
    """A `failed` record: `reason` is one line, `error` the traceback."""
    reason = " ".join(reason.split())[:300]
    if trainer is not None:
        record = trainer.make_record("failed", reason)
    else:
        record = Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                        config=cell.to_dict(), status="failed", reason=reason)
    record.error = error
    return record


def store_failed(store: Store, record: Record) -> Record:
    """Store a `failed` record unless someone stored the cell meanwhile (a retried record goes
    into its history)."""
    previous = store.get(record.cell_id)
    if previous is not None and previous.status not in ("failed", "diverged"):
        return previous  # someone stored it meanwhile
    if previous is not None:
        record.history = previous.history + [{"event": "retry", "at": time.time(),
                                              "status": previous.status,
                                              "reason": previous.reason}]
    store.put(record, replace=previous is not None)
    return record


def holders_record(store: Store, cell_id: str, seen: dict[str, float]) -> Record | None:
    """The record another run's lease holder stored for a cell this run deferred, or None while
    there is none: a retried cell's old record (`seen`) is not its result."""
    record = store.get(cell_id)
    return record if record is not None and record.created_at != seen.get(cell_id) else None


def evaluate(trainer: Trainer, eval_spec, record: Record) -> None:
    """Score the trainer's G into the record (metrics, protocol, eval seconds)."""
    from bench.metrics import evaluate_samples

    started = time.perf_counter()
    metrics, protocol = evaluate_samples(trainer.sample, trainer.data, eval_spec, trainer.device)
    record.metrics, record.protocol = metrics, protocol
    record.timings["eval_s"] = round(time.perf_counter() - started, 3)
    if trainer.workdir is not None:  # the report's samples, so it needs no torch (store/samples.py)
        from bench.train.samples import write_samples

        write_samples(trainer.sample, trainer.data, trainer.workdir, eval_spec, trainer.device)


CURVE_POINTS = 10  # default number of metric-curve points per run


def curve_probe(kind: str) -> Callable[[Trainer], dict[str, float]]:
    """The cheap metrics scored during training: 2-D mode coverage (2,500 samples), or FID and
    class/stacked modes on 500 samples with the classifier extractor for images."""
    from bench.metrics import EvalSpec, evaluate_samples

    spec = (EvalSpec(metrics=("modes",)) if kind == "2d" else
            EvalSpec(metrics=("fid", "modes"), num_samples=500, stacked_samples=2000))
    return lambda t: evaluate_samples(t.sample, t.data, spec, t.device)[0]


def curve_interval(steps: int, curve_every: int | None) -> int:
    """Steps between curve points: `curve_every`, or None for CURVE_POINTS per run; 0 = off."""
    if curve_every is None:
        return steps // CURVE_POINTS
    return curve_every


def _put_once(store: Store, record: Record) -> Record:
    """Store a record; when another process stored the cell first, theirs wins."""
    try:
        store.put(record)
        return record
    except StoreError:
        existing = store.get(record.cell_id)
        if existing is None:
            raise
        return existing


def run_cell(cell: CellConfig, store: Store, *, eval_spec=None, device: str | None = None,
             progress: bool = True, stop_after: int | None = None,
             curve_every: int | None = None,
             on_trainer: Callable[[Trainer], None] | None = None,
             retry: Collection[str] = (), wait: bool = True,
             threads: int | None = None,
             seen: Mapping[str, float] | None = None) -> Record | None:
    """Returns the stored record (new or existing), or None when stopped early (`stop_after`,
    STOP). Metric curves are scored every `curve_every` steps (None: 10 points per run; 0: none).
    A stored record whose status is in `retry` (e.g. failed, diverged) is trained again; the old
    one goes into `history`. Only the record seen when the cell was scheduled is redone
    (`seen`: cell id -> its `created_at`; None: the one stored now): a newer one, stored by a
    concurrent run meanwhile, is returned, even when it failed too. When another process holds
    the cell's lease, wait for it to store the cell (`wait`) or raise CellBusy."""
    existing = store.get(cell.cell_id)
    if seen is None:
        redo_id = existing.created_at if existing is not None else None
    else:
        redo_id = seen.get(cell.cell_id)
    retry = tuple(retry) if redo_id is not None else ()  # nothing was seen: nothing to redo
    if existing is not None and (existing.status not in retry
                                 or existing.created_at != redo_id):
        return existing
    blocked = disallowed_record(cell)
    if blocked is not None:
        return existing if existing is not None else _put_once(store, blocked)
    owner = my_owner()
    with Leases(store.db_path) as leases:
        said = False
        while True:
            state, lease = leases.acquire(cell.cell_id, owner, redo=retry, redo_created=redo_id)
            if state == "stored":
                return store.get(cell.cell_id)
            if state == "taken":
                break
            if not wait:
                raise CellBusy(lease)
            if not said:  # waiting silently would look like a hang
                print(f"ganbench: cell {cell.cell_id} is being trained by {lease.owner}; "
                      f"waiting for its record", file=sys.stderr, flush=True)
                said = True
            time.sleep(LEASE_POLL_S)
        fence = fence_for(store.db_path, cell.cell_id)
        for tmp in remove_stale_temporaries(store.cell_dir(cell.cell_id)):
            # a killed write's temporary: its writer is gone (we hold the lease now)
            print(f"ganbench: removed {tmp}, left by a write that was killed", file=sys.stderr,
                  flush=True)
        try:
            with Heartbeat(store.db_path, cell.cell_id, owner):
                return _train_and_store(cell, store, eval_spec=eval_spec, device=device,
                                        progress=progress, stop_after=stop_after,
                                        curve_every=curve_every, on_trainer=on_trainer,
                                        threads=threads or cell.train.threads,
                                        lost=fence.lost.is_set if fence else None)
        except LeaseLost as exc:
            print(f"ganbench: {exc}", file=sys.stderr, flush=True)
            now = leases.get(cell.cell_id) or Lease(cell.cell_id, None, 0.0, 0)
            raise LeaseLostError(now, str(exc)) from None
        finally:
            leases.release(cell.cell_id, owner)


def _restart_from_scratch(trainer: Trainer, exc: CheckpointError) -> dict:
    """Move an unreadable checkpoint aside (kept for inspection), warn, and note the event."""
    path = trainer.checkpoint_path()
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(path, aside)
    print(f"ganbench: warning: {exc}; moved it to {aside}; cell {trainer.cell.cell_id} "
          f"restarts from step 0", file=sys.stderr, flush=True)
    return {"event": "restart", "at": time.time(), "reason": str(exc), "moved_to": str(aside)}


def _fall_back(trainer: Trainer, exc: CheckpointError, build: Callable[[], Trainer]
               ) -> tuple[Trainer, dict]:
    """A checkpoint that cannot be trusted: move it aside, then resume from the previous one
    (`checkpoint.prev.pt`, itself verified) or from step 0. One warning line either way."""
    path = trainer.checkpoint_path()
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.replace(path, aside)
    prev = previous_path(path)
    why = str(exc)
    fresh = build()
    if prev.exists():
        try:
            fresh.load_state_dict(load_checkpoint(prev), str(prev))
        except CheckpointError as prev_exc:
            why += f"; the previous one too ({prev_exc})"
            fresh = build()  # nothing half-loaded survives
        else:
            print(f"ganbench: warning: {exc}; moved it to {aside}; cell {trainer.cell.cell_id} "
                  f"falls back to its previous checkpoint {prev.name} (step {fresh.step})",
                  file=sys.stderr, flush=True)
            return fresh, {"event": "fallback", "at": time.time(), "reason": str(exc),
                           "moved_to": str(aside), "step": fresh.step}
    print(f"ganbench: warning: {why}; moved it to {aside}; cell {trainer.cell.cell_id} "
          f"restarts from step 0", file=sys.stderr, flush=True)
    return fresh, {"event": "restart", "at": time.time(), "reason": why, "moved_to": str(aside)}


def _train_and_store(cell: CellConfig, store: Store, *, eval_spec, device, progress, stop_after,
                     curve_every, on_trainer, threads: int,
                     lost: Callable[[], bool] | None = None) -> Record | None:
    previous = store.get(cell.cell_id)  # a record being retried, or None
    history = list(previous.history) if previous else []
    if previous is not None:
        history.append({"event": "retry", "at": time.time(), "status": previous.status,
                        "reason": previous.reason, "step": previous.step,
                        "metrics": previous.metrics, "error": previous.error})
    if eval_spec is None:
        from bench.metrics import EvalSpec

        eval_spec = EvalSpec()
    dev = pick_device(device)
    threads_before = torch.get_num_threads()
    if dev.type == "cpu":
        torch.set_num_threads(threads)
    trainer = None
    try:
        data = load_dataset(cell.data.name, resolution=cell.data.resolution)

        def build() -> Trainer:
            tr = Trainer(cell, workdir=store.cell_dir(cell.cell_id), device=dev,
                         progress=progress, dataset=data)
            every = curve_interval(cell.train.steps, curve_every)
            if every > 0:
                tr.set_probe(curve_probe(data.kind), every)
            if on_trainer is not None:
                on_trainer(tr)
            # Ctrl-C / SIGTERM, or a lost lease (the next write would raise LeaseLost)
            tr.should_stop = STOP.is_set if lost is None else \
                (lambda: STOP.is_set() or lost())
            return tr

        trainer = build()
        try:
            trainer.try_resume()
        except CheckpointError as exc:
            trainer, event = _fall_back(trainer, exc, build)
            history.append(event)
        status, reason = trainer.train(stop_after=stop_after)
        if lost is not None and lost():  # stopped by a lost lease: write nothing
            fence = fence_for(store.db_path, cell.cell_id)
            raise LeaseLost(fence.message() if fence else f"lost the lease of cell "
                            f"{cell.cell_id}; stopped without writing", cell.cell_id)
        if status == "interrupted":
            return None
        record = trainer.make_record(status, reason)
        record.runtime["numerics"] = numerics(dev)  # what bits this machine computes
        if status == "done":
            evaluate(trainer, eval_spec, record)
        trainer.board_final(record)  # live curves: the scored metrics and samples
    except (DiskFull, StoreBusy):  # not the cell's fault: one line, nothing stored; a rerun
        raise  # resumes (StoreBusy: another process held the store's write lock too long)
    except Exception as exc:  # the cell failed; the grid goes on
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        record = failed_record(cell, last, traceback.format_exc(), trainer)
    finally:
        torch.set_num_threads(threads_before)
        if trainer is not None:
            trainer.close_board()
    record.history = history + record.history
    if previous is not None:
        store.put(record, replace=True)
        return record
    return _put_once(store, record)
