"""A grid's optional `[published]` table: which published table (bench/published/) its rows
reproduce, with its variants -> the table's rows and its datasets -> the table's columns. It is
report metadata: it goes into the grid spec `run` stores, never into a cell, so no cell id or
plan changes with it (tests/test_published_grid.py)."""
from __future__ import annotations

from bench.core.config import ConfigError
from bench.core.published import check_mapping
from bench.schedule.grid.checks import Checker
from bench.store.results import row_label_of


def published_mapping(doc: dict, check: Checker, members) -> dict | None:
    """The checked mapping (bench.core.published.check_mapping), or None without the table;
    a bad one is one ConfigError line naming the file."""
    if "published" not in doc:
        return None
    infos = [m.get("info", {}) for m in members]
    variants = list(dict.fromkeys(row_label_of(i.get("label", ""), i.get("sweep") or {},
                                               i.get("tune") or {}) for i in infos))
    datasets = list(dict.fromkeys(m["dataset"] for m in members))
    with check.naming("", ConfigError):
        return check_mapping(doc["published"], variants, datasets)
