"""The rows a report is made from: the store's current records per grid membership (through
`bench.store.results.load_table` only), the chance and true-data reference rows per dataset, and
the validity flags that need them."""
from __future__ import annotations

import logging
import time

import pandas as pd

from bench.report import references, validity
from bench.store.results import Catalog, headline_metrics, load_table

LOG = logging.getLogger("ganbench")  # `ganbench -v report` says where the time goes


def load_rows(store, grid: str | list[str] | None, image_references: bool,
              started: float) -> tuple[pd.DataFrame, Catalog, dict]:
    """(rows with their flags, what the grids asked for, {data: chance and true-data rows});
    image sets' references are scored on a miss only when asked."""
    df, catalog = load_table(store, grid=grid)
    LOG.debug(f"report: {df['cell_id'].nunique()} current cells, {len(df)} grid memberships "
              f"read in {time.perf_counter() - started:.1f} s")
    refs = references.for_records(df, compute=True if image_references else None)
    df = validity.add_flags(df, refs, headline_metrics)  # d_at_chance, at_chance
    return df, catalog, refs
