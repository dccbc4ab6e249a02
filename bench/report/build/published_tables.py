"""The report's hook for grids that declare a `[published]` table: the side-by-side table and
the directions table (bench/report/published.py), and the index.md lines that point at them.
The mapping comes from the grid spec `run` stored; a store written before grids had the key
(its spec lacks it) takes it from the preset of the same name, and index.md says so."""
from __future__ import annotations

import sys
from collections import Counter

import pandas as pd

from bench.core.config import ConfigError
from bench.core.grid_files import GRID_DIR
from bench.core.published import check_mapping, load_published
from bench.report import published
from bench.report.build.contents import Report
from bench.report.build.stems import Stems

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def mapping_of(grid: str, spec: dict) -> tuple[dict | None, str]:
    """(mapping or None, where it came from or why there is none)."""
    if "published" in spec:
        return spec["published"], "the grid spec stored by `run`"
    preset = GRID_DIR / f"{grid}.toml"
    if not preset.is_file():
        return None, ""
    where = f"the preset `bench/grids/{grid}.toml`, as the store's grid spec predates `[published]`"
    try:  # a broken preset costs the comparison, not the report
        raw = tomllib.loads(preset.read_text(encoding="utf-8")).get("published")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return None, f"{where} cannot be read: {exc}"
    if raw is None:
        return None, ""
    if not isinstance(raw, dict):
        return None, f"{where} has an invalid [published] table: not a table"
    try:  # the preset's own rows and datasets: a row it names that the store lacks is 'not stored'
        rows, data = raw.get("rows"), raw.get("datasets")
        return check_mapping(raw, list(rows) if isinstance(rows, dict) else [],
                             list(data) if isinstance(data, dict) else []), where
    except ConfigError as exc:
        return None, f"{where} has an invalid [published] table: {exc}"


def add_published(report: Report, refs: dict, stem_of: Stems) -> None:
    """Append each mapped grid's two tables to the report and its lines for index.md."""
    df = report.df
    if df is None or df.empty:
        return
    for grid in dict.fromkeys(g for g in df["grid"] if g):
        mapping, where = mapping_of(grid, report.catalog.grids.get(grid, {}))
        if mapping is None:
            if where:
                report.published.append(f"- Grid `{grid}`: no comparison ({where}).")
            continue
        pool = df[df["grid"] == grid]
        stem = stem_of("published", grid)
        values = published.values_table(stem, grid, mapping, pool, refs)
        directions = published.directions_table(f"{stem}-directions", grid, mapping, pool)
        report.tables += [values, directions]
        report.published.append(summary_line(grid, mapping, where, values, directions))


def summary_line(grid: str, mapping: dict, where: str, values, directions) -> str:
    table = load_published(mapping["table"])
    said = Counter(directions.numbers["direction"]) if len(directions.numbers) else Counter()
    tally = "; ".join(f"{k} × {v}" for v, k in said.items()) or "no pair of mapped rows"
    datasets, variants = published.in_table_order(mapping, table)
    rows = ", ".join(f"{v} → {r}" for v, r in variants)
    data = ", ".join(f"{d} → {c}" for d, c in datasets)
    suite = values.numbers[values.numbers["source"] == "suite"] if len(values.numbers) else \
        pd.DataFrame(columns=["steps"])
    steps = sorted({int(s) for s in suite["steps"].dropna()})
    return (f"- Grid `{grid}` beside {table.title} ({table.statistic}; budget "
            f"{table.budget_text}); suite budget {', '.join(f'{s:,}' for s in steps) or '–'} "
            f"steps; rows {rows}; datasets {data} (mapping from {where}): "
            f"[tables/{values.name}.md](tables/{values.name}.md), directions of the paper's "
            f"comparisons [tables/{directions.name}.md](tables/{directions.name}.md) "
            f"({tally}).")
