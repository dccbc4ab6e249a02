"""Published tables as data (`bench/published/<name>.toml`, one file per table) and the check of a
grid's `[published]` table, which maps its variants and datasets onto a table's rows and
columns. In core because both the grid loader (validation) and the report (rendering) read it,
and neither may import the other; torch-free."""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.core.config import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

PUBLISHED_DIR = Path(__file__).resolve().parents[1] / "published"  # ships like bench/grids
MAPPING_KEYS = {"table", "rows", "datasets", "metrics"}


@dataclass(frozen=True)
class Metric:
    key: str  # the table's name for it
    label: str
    suite: str  # the suite's metric
    scale: float  # suite value × scale = the paper's unit (high_quality: fraction -> %)
    unit: str = ""


@dataclass(frozen=True)
class Column:
    key: str  # e.g. "ring"
    label: str
    modes: int


@dataclass(frozen=True)
class PublishedTable:
    name: str
    title: str
    citation: str
    docs: str
    spread: str  # what ± means ("" when the table gives none)
    statistic: str  # e.g. "mean ± standard error over 10 trials"
    trials: int
    samples: int
    budget_steps: int | None  # None: the source states no budget
    budget_text: str
    source: dict[str, str]
    metrics: tuple[Metric, ...]
    columns: tuple[Column, ...]
    # {row: {column: {metric key: (mean, spread or None)}}}, rows in the table's order
    rows: dict[str, dict[str, dict[str, tuple[float, float | None]]]]
    compare: tuple[tuple[str, str], ...] = field(default=())  # (row, against) pairs

    def metric(self, suite_name: str) -> Metric:
        return next(m for m in self.metrics if m.suite == suite_name)

    def value(self, row: str, column: str, metric_key: str) -> tuple[float, float | None]:
        return self.rows[row][column].get(metric_key, (math.nan, None))


def table_names() -> list[str]:
    return sorted(p.stem for p in PUBLISHED_DIR.glob("*.toml"))


def _pair(value: Any, where: str) -> tuple[float, float | None]:
    if isinstance(value, list) and len(value) == 2:
        return float(value[0]), float(value[1])
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value), None
    raise ConfigError(f"{where}: expected a number or [mean, spread], got {value!r}")


@lru_cache(maxsize=None)
def load_published(name: str) -> PublishedTable:
    """The table `bench/published/<name>.toml`; an unknown name is a one-line ConfigError."""
    path = PUBLISHED_DIR / f"{name}.toml"
    if not path.is_file():
        raise ConfigError(f"unknown published table {name!r} (known: "
                          f"{', '.join(table_names()) or 'none'})")
    doc = tomllib.loads(path.read_text(encoding="utf-8"))
    metrics = tuple(Metric(m["key"], m["label"], m["suite"], float(m["scale"]), m.get("unit", ""))
                    for m in doc["metrics"])
    columns = tuple(Column(c["key"], c["label"], int(c["modes"])) for c in doc["columns"])
    for r in doc["rows"]:  # a key written after [[rows]] lands in the last row: refuse it
        stray = set(r) - {"name"} - {c.key for c in columns}
        if stray:
            raise ConfigError(f"{path}: row {r.get('name')!r} has unknown key(s) "
                              f"{', '.join(sorted(stray))}")
    rows = {r["name"]: {c.key: {k: _pair(v, f"{path}: {r['name']}.{c.key}.{k}")
                                for k, v in r.get(c.key, {}).items()} for c in columns}
            for r in doc["rows"]}
    compare = tuple((a, b) for a, b in doc.get("compare", []))
    for a, b in compare:
        if a not in rows or b not in rows:
            raise ConfigError(f"{path}: compare names a row that is not in the table: {a!r}, {b!r}")
    return PublishedTable(
        name=doc["name"], title=doc["title"], citation=doc["citation"], docs=doc["docs"],
        spread=doc.get("spread", ""), statistic=doc["statistic"], trials=int(doc["trials"]),
        samples=int(doc["samples"]), budget_steps=doc["budget"].get("steps"),
        budget_text=doc["budget"]["text"], source=dict(doc["source"]), metrics=metrics,
        columns=columns, rows=rows, compare=compare)


def check_mapping(raw: Any, variants: list[str], datasets: list[str]) -> dict[str, Any]:
    """A grid's `[published]` table, checked against the published table and the grid's own
    variant row labels (e.g. 'baseline', 'packing [packing.m=2]') and datasets. Returns the
    normalised mapping the grid spec stores: {"table", "rows", "datasets", "metrics"}. Every
    error is one line starting "[published] " (the grid loader adds the file)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"[published] = {raw!r}: expected a table, e.g. [published] "
                          f'table = "pacgan-t1"')
    unknown = sorted(set(raw) - MAPPING_KEYS)
    if unknown:
        raise ConfigError(f"[published] unknown key(s) {', '.join(unknown)} (allowed: "
                          f"{', '.join(sorted(MAPPING_KEYS))})")
    name = raw.get("table")
    if not isinstance(name, str):
        raise ConfigError(f"[published] table = {name!r}: expected the name of a published "
                          f"table ({', '.join(table_names())})")
    try:
        table = load_published(name)
    except ConfigError as exc:
        raise ConfigError(f"[published] table: {exc}") from None
    rows = _string_table(raw, "rows", "variant")
    for variant, row in rows.items():
        if variant not in variants:
            raise ConfigError(f"[published] rows: variant {variant!r} is not a variant "
                              f"of this grid (its variants: {', '.join(variants)})")
        if row not in table.rows:
            raise ConfigError(f"[published] rows: {variant} = {row!r} is not a row of "
                              f"{table.name} (its rows: {', '.join(table.rows)})")
    columns = _string_table(raw, "datasets", "dataset")
    keys = [c.key for c in table.columns]
    for dataset, column in columns.items():
        if dataset not in datasets:
            raise ConfigError(f"[published] datasets: dataset {dataset!r} is not a "
                              f"dataset of this grid (its datasets: {', '.join(datasets)})")
        if column not in keys:
            raise ConfigError(f"[published] datasets: {dataset} = {column!r} is not a column "
                              f"of {table.name} (its columns: {', '.join(keys)})")
    suite = [m.suite for m in table.metrics]
    metrics = raw.get("metrics", suite)
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"[published] metrics = {metrics!r}: expected a non-empty list of "
                          f"the suite's metric names ({', '.join(suite)})")
    for m in metrics:
        if m not in suite:
            raise ConfigError(f"[published] metrics: {m!r} is not a metric {table.name} "
                              f"reports (the suite's names for them: {', '.join(suite)})")
    return {"table": table.name, "rows": rows, "datasets": columns, "metrics": list(metrics)}


def _string_table(raw: dict, key: str, what: str) -> dict[str, str]:
    value = raw.get(key)
    if not isinstance(value, dict) or not value or \
            not all(isinstance(v, str) for v in value.values()):
        raise ConfigError(f"[published] {key} = {value!r}: expected a non-empty table of "
                          f'{what} = "paper name"')
    return dict(value)
