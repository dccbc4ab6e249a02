"""Re-score stored cells from their final checkpoints without retraining. The new scores
replace the record's metrics; the previous metrics and protocol are kept in
`protocol["previous"]`, so no stored result is lost."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from bench.config import CellConfig
from bench.record import Record
from bench.runner import evaluate
from bench.store import Store, StoreError
from bench.train import Trainer


def rescore(store_root: Path, cell: str | None, eval_spec, device: str | None = None
            ) -> Iterator[Record]:
    with Store(store_root, create=False) as store:
        if cell:
            records = [store.get(store.resolve_id(cell))]
        else:
            records = list(store.records(status="done"))
        for old in records:
            if old.status != "done":
                raise StoreError(f"cell {old.cell_id} is '{old.status}': nothing to score")
            trainer = Trainer(CellConfig.from_dict(old.config),
                              workdir=store.cell_dir(old.cell_id), device=device, progress=False)
            if not trainer.try_resume() or trainer.step != trainer.steps:
                raise StoreError(f"cell {old.cell_id} has no final checkpoint in "
                                 f"{store.cell_dir(old.cell_id)}")
            new = Record(**{**old.__dict__, "metrics": {}, "protocol": {},
                            "timings": dict(old.timings)})
            evaluate(trainer, eval_spec, new)
            previous = old.protocol.pop("previous", [])
            new.protocol["previous"] = previous + [{"metrics": old.metrics,
                                                    "protocol": old.protocol}]
            store.put(new, replace=True)
            yield new
