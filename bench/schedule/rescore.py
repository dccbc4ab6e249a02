"""Re-score stored cells from their final checkpoints without retraining.

The new scores are merged into the record's metrics (a metric not scored this time keeps its
value); the previous metrics and protocol go into `record.history` as a "rescore" event, so no
stored result is lost. The cell and its checkpoint folder follow from the record's config,
whose hash must equal the record's id (`Store.checked_cell`): a record planted or edited in a
store cannot point anywhere else.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator

from bench.core.record import Record
from bench.metrics import MetricError, available_metrics
from bench.schedule.runner import evaluate
from bench.store import Store, StoreError
from bench.train import Trainer


def kind_of(record: Record) -> str:
    """'2d' or 'image': from the stored protocol, else from the dataset's name."""
    from bench.data import dataset_kind

    return record.protocol.get("kind") or dataset_kind(record.dataset)


def rescore(store_root: Path, cell: str | None, eval_spec, device: str | None = None,
            on_skip: Callable[[list[Record], str], None] | None = None) -> Iterator[Record]:
    """Re-score `cell` (an id or prefix; None: every finished cell). A cell that none of the
    requested metrics applies to (e.g. fid on 2-D data) is skipped: re-scoring it would change
    nothing but add a history entry. `on_skip(records, why)` hears of the skipped ones; when
    every cell would be skipped, MetricError."""
    with Store(store_root, create=False) as store:
        if store.read_only:
            raise StoreError(f"store {store.db_path} is read-only here; re-scoring writes to it")
        if cell is not None:  # '' is a bad id, not "every cell"
            records = [store.get(store.resolve_id(cell))]
        else:
            records = list(store.records(status="done"))
        kinds = {r.cell_id: kind_of(r) for r in records}
        skip = {cid for cid, k in kinds.items()
                if not set(eval_spec.metrics) & set(available_metrics(k))}
        if skip:
            why = (f"--metrics {','.join(eval_spec.metrics)} does not apply to "
                   + "; ".join(f"{k} data (scored on {', '.join(available_metrics(k))})"
                               for k in sorted({kinds[cid] for cid in skip})))
            if len(skip) == len(records):
                raise MetricError(f"{why}: nothing to re-score in the {len(records)} "
                                  f"selected cell(s)")
            if on_skip is not None:
                on_skip([r for r in records if r.cell_id in skip], why)
        for old in (r for r in records if r.cell_id not in skip):
            if old.status != "done":
                raise StoreError(f"cell {old.cell_id} is '{old.status}': nothing to score")
            config = store.checked_cell(old)
            workdir = store.cell_dir(config.cell_id)
            trainer = Trainer(config, workdir=workdir, device=device, progress=False)
            if not trainer.try_resume() or trainer.step != trainer.steps:
                raise StoreError(f"cell {old.cell_id} has no final checkpoint in {workdir}")
            yield rescored(store, old, trainer, eval_spec)


def rescored(store: Store, old: Record, trainer: Trainer, eval_spec) -> Record:
    """Score `trainer` into a copy of `old`, merge, keep the old scores in history, store."""
    new = Record(**{**old.__dict__, "metrics": {}, "protocol": {},
                    "timings": dict(old.timings), "history": list(old.history)})
    evaluate(trainer, eval_spec, new)
    # metrics not scored now keep their values; new.protocol["metrics"] says which were
    # scored now, the history entry says under which protocol the others were
    new.metrics = {**old.metrics, **new.metrics}
    new.history.append({"event": "rescore", "at": time.time(), "metrics": old.metrics,
                        "protocol": old.protocol})
    store.put(new, replace=True)
    return new
