"""The two stages of a grid with held-out tuning (`tune_seeds`; bench/schedule/tuning.py), as one stream
of records: stage 1 (the tuning seeds, and every untuned cell), then each variant's chosen
setting on the evaluation seeds. Stage 2 is resolved from the stored stage-1 records only, so a
resumed, interrupted or concurrent run schedules the same cells, and stored ones are skipped
(leases keep every cell to one trainer). `run` and `compare` both run grids through here.

Within a stage, cells are handed out longest first (calibrated per-step costs,
`bench.schedule.step_costs`), so the stage's last cells are short ones and no worker waits long on one
cell at the end of the stage."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

from bench.core.config import CellConfig
from bench.core.record import Record
from bench.schedule.tuning import Stage2, records_for, resolve


def longest_first(cells: list[CellConfig]) -> list[CellConfig]:
    from bench.schedule.step_costs import estimate_cell_seconds

    return sorted(cells, key=lambda c: -estimate_cell_seconds(c))


def stage2_of(grid, store_root: Path) -> Stage2:
    """Stage 2 of `grid` as far as the store decides it now (nothing pending when the store
    holds every tuning cell)."""
    from bench.store import Store

    if not grid.plans:
        return Stage2([], [], [], {})
    if not (Path(store_root) / "results.sqlite").is_file():
        return resolve(grid.plans, {})
    with Store(store_root, create=False) as store:
        records = records_for(store, [c for p in grid.plans for c in p.tune_cells()])
    return resolve(grid.plans, records)


def write_members(grid, store_root: Path, name: str | None = None) -> None:
    """Store the grid's memberships: its stage-1 and untuned cells, and the stage-2 cells the
    stored tuning records decide (re-written after stage 1, so the report finds them)."""
    from bench.store import Store

    extra = stage2_of(grid, store_root).members
    with Store(store_root) as store:
        store.put_grid(name or grid.name, grid.spec, list(grid.members) + extra)


def run_staged(grid, store_root: Path, *, whole=None, name: str | None = None,
               on_stage2: Callable[[Stage2], None] | None = None,
               **run_opts) -> Iterator[Record]:
    """Yield the record of every cell of `grid` (stage 1, then stage 2) as `run_cells` does.
    `whole`: the unselected grid whose memberships are stored (`run --only` trains part of a
    grid; the store records all of it); `name`: the stored grid name (default grid.name).
    `on_stage2(stage2)` is called when stage 2 is resolved, before it trains."""
    from bench.schedule.executor import run_cells

    yield from run_cells(longest_first(list(grid.cells)), store_root, **run_opts)
    if not grid.plans:
        return
    write_members(whole or grid, store_root, name)
    stage2 = stage2_of(grid, store_root)
    if on_stage2 is not None:
        on_stage2(stage2)
    yield from run_cells(longest_first(stage2.cells), store_root, **run_opts)
