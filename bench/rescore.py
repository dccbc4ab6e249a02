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
from typing import Iterator

from bench.record import Record
from bench.runner import evaluate
from bench.store import Store, StoreError
from bench.train import Trainer


def rescore(store_root: Path, cell: str | None, eval_spec, device: str | None = None
            ) -> Iterator[Record]:
    with Store(store_root, create=False) as store:
        if store.read_only:
            raise StoreError(f"store {store.db_path} is read-only here; re-scoring writes to it")
        if cell:
            records = [store.get(store.resolve_id(cell))]
        else:
            records = list(store.records(status="done"))
        for old in records:
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
