"""What the grids asked for that the report cannot show (not stored yet, or stored under another
metric protocol or trick version), and the words the tables and index.md use for it."""
from __future__ import annotations

import pandas as pd

from bench.store.results import Catalog


def shortfalls(df: pd.DataFrame, catalog: Catalog) -> dict[tuple[str, str, str], list[tuple[str, int, int, int]]]:
    """What the grids asked for that has no current record (a run in progress, one trained part
    by part with `run --only`, or records of another protocol or trick version): for each (grid,
    dataset, design), (variant, current, asked, stored under another protocol or trick version)
    per variant short of seeds, in grid order."""
    have = set(df["cell_id"])
    stored = set(catalog.stored_ids) - have
    asked: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    for m in catalog.members:
        per_variant = asked.setdefault((m["grid"], m["dataset"], m["design"]), {})
        per_variant.setdefault(m["info"].get("label", "?"), []).append(m["cell_id"])
    out = {}
    for key, per_variant in asked.items():
        short = [(label, sum(c in have for c in ids), len(ids), sum(c in stored for c in ids))
                 for label, ids in per_variant.items() if not set(ids) <= have]
        if short:
            out[key] = short
    return out


def seeds_text(short: list[tuple[str, int, int, int]]) -> str:
    return ", ".join(f"{label} {k}/{n} seeds" for label, k, n, _ in short)


def lacking_text(short: list[tuple[str, int, int, int]], grid: str) -> str:
    """A table's note on the cells it lacks: not stored at all (`status` lists them), or stored
    under another protocol or trick version (which `status` counts as done)."""
    other = sum(o for *_, o in short)
    missing = sum(n - k for _, k, n, _ in short) - other
    listed = f"`ganbench status --grid {grid}` lists them"
    if not other:
        return f"Not stored yet ({missing} cell(s); {listed}): {seeds_text(short)}."
    why = f"stored under another protocol or trick version: {other}"
    if missing:
        why = f"not stored yet: {missing}, {listed}; {why}"
    return f"Not shown ({missing + other} cell(s); {why}): {seeds_text(short)}."
