"""Run many cells: in this process, or on a pool of worker processes. Stored cells are skipped
and interrupted cells resume from their checkpoints, so a run can be restarted at any time.
Every worker opens its own connection to the store; SQLite WAL handles the concurrency."""
from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Iterable, Iterator

import torch
from tqdm.auto import tqdm

from bench.config import CellConfig
from bench.record import Record
from bench.runner import run_cell
from bench.store import Store


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8)) if not torch.cuda.is_available() else 1


def _run_in_worker(cell_json: dict, store_root: str, eval_spec, device: str | None,
                   threads: int, curve_every: int | None) -> dict:
    torch.set_num_threads(threads)
    with Store(store_root) as store:
        record = run_cell(CellConfig.from_dict(cell_json), store, eval_spec=eval_spec,
                          device=device, progress=False, curve_every=curve_every)
    return {"cell_id": record.cell_id} if record else {}


def run_cells(cells: Iterable[CellConfig], store_root: Path, *, workers: int = 1,
              eval_spec=None, device: str | None = None, progress: bool = True,
              curve_every: int | None = None) -> Iterator[Record]:
    """Yield each cell's record as it is stored (stored ones first, without retraining)."""
    cells = list({c.cell_id: c for c in cells}.values())  # a cell listed twice runs once
    with Store(store_root) as store:
        todo = []
        for cell in cells:
            record = store.get(cell.cell_id)
            if record is not None:
                yield record
            else:
                todo.append(cell)
    if not todo:
        return
    bar = tqdm(total=len(todo), desc="cells", unit="cell", disable=not progress,
               dynamic_ncols=True)
    try:
        if workers <= 1:
            with Store(store_root) as store:
                for cell in todo:
                    record = run_cell(cell, store, eval_spec=eval_spec, device=device,
                                      progress=progress, curve_every=curve_every)
                    bar.update(1)
                    yield record
            return
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")  # fork is unsafe with torch threads
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool, \
                Store(store_root) as store:
            pending = {pool.submit(_run_in_worker, c.to_dict(), str(store_root), eval_spec,
                                   device, threads, curve_every): c for c in todo}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in done:
                        cell = pending.pop(fut)
                        fut.result()  # re-raise a worker's error here
                        bar.update(1)
                        yield store.get(cell.cell_id)
            except BaseException:
                # stop queued cells; running ones keep their checkpoints for the next run
                pool.shutdown(wait=False, cancel_futures=True)
                raise
    finally:
        bar.close()
