"""The sample sheets of a report: one contact sheet per variant and dataset, drawn by the
Renderer from the sample files the scored cells wrote."""
from __future__ import annotations

from collections import Counter
from concurrent.futures import Future
from pathlib import Path

import pandas as pd

from bench.report import figures
from bench.report.build.contents import add_pngs
from bench.report.build.renderer import Renderer
from bench.store import CELL_ID


def sample_sheet_jobs(df: pd.DataFrame, folder: Path, stem_of,
                      renderer: Renderer) -> list[tuple[Future, str]]:
    """Submit one titled contact sheet per variant (row label) and dataset, a panel per seed,
    from the sample files the scored cells wrote; with several grids a variant of each grid's
    setup gets its own sheet. (future, title) per sheet, in order."""
    cells = df.drop_duplicates("cell_id")
    cells = cells[cells["status"] == "done"]
    several = df["grid"].nunique() > 1  # the same variant may be in two grids' setups
    out: list[tuple[Future, str]] = []
    keys = ["grid"] * several + ["data", "row_label", "setup_id"]
    groups = list(cells.groupby(keys, sort=False))
    setups = Counter(tuple(k[:-1]) for k, _ in groups)
    for key, part in groups:
        grid_name = key[0] if several else ""
        data, label, setup = key[-3:]
        part = part.sort_values("seed")
        files = [(f"seed {int(seed)}", Path(cell_dir) / "samples.npz")
                 for seed, cell_id, cell_dir in zip(part["seed"], part["cell_id"], part["cell_dir"])
                 if CELL_ID.fullmatch(str(cell_id))]  # never a path from store text
        files = [(t, f) for t, f in files if f.exists()]
        if not files:
            continue
        title = f"{data} {label}" + (f" (grid {grid_name})" if grid_name else "") + (
            f" (setup {setup})" if setups[tuple(key[:-1])] > 1 else "")
        stem = stem_of(data, label, grid_name, setup if setups[tuple(key[:-1])] > 1 else "")
        out.append((renderer.submit(figures.sample_sheet, files, folder / stem, title), title))
    return out


def sheets_done(jobs: list[tuple[Future, str]]) -> list[tuple[Path, str]]:
    sheets: list[tuple[Path, str]] = []
    for future, title in jobs:
        paths, drawn = Renderer.result(future)
        add_pngs(sheets, paths, f"{title}, seeds {', '.join(t.split()[-1] for t in drawn)}")
    return sheets
