"""Part of a grid: `ganbench run --only` / `--datasets`, to train what matters first (e.g. the
baseline and one trick of an expensive preset on a small machine). The selection trains fewer
cells; the grid recorded in the store stays whole, so reports and `status --grid` say what the
grid still lacks, and a later run without the options trains the rest."""
from __future__ import annotations

import dataclasses
import fnmatch

from bench.core.config import ConfigError
from bench.data import normalize_name
from bench.schedule.grid import Grid


def _patterns(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def select(grid: Grid, only: str | None = None, datasets: str | None = None) -> Grid:
    """The grid restricted to the cells whose variant label matches one of the comma-separated
    `only` patterns (fnmatch: 'baseline,unrolled', 'lr_*') and whose dataset is in `datasets`.
    A pattern or dataset that selects nothing is a ConfigError naming what there is."""
    for option, text in (("--only", only), ("--datasets", datasets)):
        if text is not None and not _patterns(text):  # '' or ',' would silently mean "all"
            raise ConfigError(f"{option} {text!r} names nothing; leave it out to run the whole "
                              f"grid")
    labels, names = _patterns(only), [normalize_name(d) for d in _patterns(datasets)]
    if not labels and not names:
        return grid
    members = list(grid.members)
    known_labels = list(dict.fromkeys(m["info"]["label"] for m in members))
    known_sets = list(dict.fromkeys(normalize_name(m["dataset"]) for m in members))
    for pattern in labels:
        if not fnmatch.filter(known_labels, pattern):
            raise ConfigError(f"--only {pattern!r} matches no variant of grid '{grid.name}' "
                              f"(variants: {', '.join(known_labels)})")
    for name in names:
        if name not in known_sets:
            raise ConfigError(f"--datasets {name!r} is not in grid '{grid.name}' "
                              f"(datasets: {', '.join(known_sets)})")
    chosen = [m for m in members
              if (not labels or any(fnmatch.fnmatchcase(m["info"]["label"], p) for p in labels))
              and (not names or normalize_name(m["dataset"]) in names)]
    ids = {m["cell_id"] for m in chosen}
    if not ids:
        raise ConfigError(f"--only {only!r} with --datasets {datasets!r} selects no cell of "
                          f"grid '{grid.name}'")
    plans = tuple(p for p in grid.plans  # held-out tuning: the evaluation cells to resolve
                  if (not labels or any(fnmatch.fnmatchcase(p.label, pat) for pat in labels))
                  and (not names or normalize_name(p.dataset) in names))
    return dataclasses.replace(grid, cells=tuple(c for c in grid.cells if c.cell_id in ids),
                               members=tuple(chosen), plans=plans)
