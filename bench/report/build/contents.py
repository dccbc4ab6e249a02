"""What a report holds while it is built, and what `write_report` returns: its tables, figures
and sample sheets, the rows they were made from and what the grids asked for."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report.tables import Table
from bench.store.results import Catalog


@dataclass
class Report:
    out: Path
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (png, one line)
    samples: list[tuple[Path, str]] = field(default_factory=list)
    df: pd.DataFrame | None = None
    lacking: dict = field(default_factory=dict)  # `shortfalls` of the grids
    catalog: Catalog = field(default_factory=Catalog)  # what the grids asked for
    verdict: list[str] = field(default_factory=list)  # index.md opens with it (bench.report.study)
    study_tables: list[Table] = field(default_factory=list)  # verdict, aggregates, power
    published: list[str] = field(default_factory=list)  # index.md lines (build/published_tables.py)


def add_pngs(listing: list, paths: list[Path], what: str) -> None:
    """Index the PNG of a figure (its PDF sits beside it)."""
    listing.extend((p, what) for p in paths if p.suffix == ".png")
