"""Run one cell end to end: skip if stored, resume from its checkpoint if interrupted, train,
score, and write exactly one record in one transaction. The future grid scheduler calls
`run_cell` for each cell; it is safe to call again after any interruption."""
from __future__ import annotations

import time
from typing import Callable

from bench.config import CellConfig
from bench.data import dataset_kind, load_dataset
from bench.record import Record
from bench.registry import conflict_reasons, create_trick
from bench.store import Store
from bench.train import Trainer


def disallowed_record(cell: CellConfig) -> Record | None:
    """A `conflict` / `not-applicable` record when the cell's tricks may not run, else None.
    Bad trick names or params raise TrickError: those are input errors, not grid results."""
    kind = dataset_kind(cell.data.name)
    tricks = [create_trick(t.name, **t.param_dict) for t in cell.tricks]
    reasons = conflict_reasons(tricks, kind)
    if not reasons:
        return None
    only_kind = all("does not apply to" in r for r in reasons)
    return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                  config=cell.to_dict(), status="not-applicable" if only_kind else "conflict",
                  reason="; ".join(reasons))


def evaluate(trainer: Trainer, eval_spec, record: Record) -> None:
    """Score the trainer's G into the record (metrics, protocol, eval seconds)."""
    from bench.metrics import evaluate_samples

    started = time.perf_counter()
    metrics, protocol = evaluate_samples(trainer.sample, trainer.data, eval_spec, trainer.device)
    record.metrics, record.protocol = metrics, protocol
    record.timings["eval_s"] = round(time.perf_counter() - started, 3)


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


def run_cell(cell: CellConfig, store: Store, *, eval_spec=None, device: str | None = None,
             progress: bool = True, stop_after: int | None = None,
             curve_every: int | None = None,
             on_trainer: Callable[[Trainer], None] | None = None) -> Record | None:
    """Returns the stored record (new or existing), or None when stopped early (`stop_after`).
    Metric curves are scored every `curve_every` steps (None: 10 points per run; 0: none)."""
    existing = store.get(cell.cell_id)
    if existing is not None:
        return existing
    blocked = disallowed_record(cell)
    if blocked is not None:
        store.put(blocked)
        return blocked
    if eval_spec is None:
        from bench.metrics import EvalSpec

        eval_spec = EvalSpec()
    data = load_dataset(cell.data.name, resolution=cell.data.resolution)
    trainer = Trainer(cell, workdir=store.cell_dir(cell.cell_id), device=device,
                      progress=progress, dataset=data)
    every = curve_interval(cell.train.steps, curve_every)
    if every > 0:
        trainer.set_probe(curve_probe(data.kind), every)
    if on_trainer is not None:
        on_trainer(trainer)
    trainer.try_resume()
    status, reason = trainer.train(stop_after=stop_after)
    if status == "interrupted":
        return None
    record = trainer.make_record(status, reason)
    if status == "done":
        evaluate(trainer, eval_spec, record)
    store.put(record)
    return record

