"""Results store: SQLite (WAL) with one row per cell, written in one transaction when the cell
ends, plus a per-cell artifact folder (checkpoints, samples) beside it.

Layout: <root>/results.sqlite, <root>/cells/<cell_id>/...
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Iterator

from bench.record import Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    cell_id    TEXT PRIMARY KEY,
    variant_id TEXT NOT NULL,
    label      TEXT NOT NULL,
    dataset    TEXT NOT NULL,
    seed       INTEGER NOT NULL,
    status     TEXT NOT NULL,
    record     TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_variant ON cells(variant_id);
-- Which grid and design asked for a cell (a cell may belong to several: the baseline is in every
-- design). Written when a grid run starts; reports join it to the records.
CREATE TABLE IF NOT EXISTS grids (
    name       TEXT PRIMARY KEY,
    spec       TEXT NOT NULL,   -- JSON: description, designs, resolutions, generators, aliases...
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS members (
    grid       TEXT NOT NULL,
    design     TEXT NOT NULL,
    dataset    TEXT NOT NULL,
    cell_id    TEXT NOT NULL,
    variant_id TEXT NOT NULL,
    info       TEXT NOT NULL,   -- JSON: variant label, factors, sweep values, tuned lr...
    PRIMARY KEY (grid, design, cell_id)
);
"""


class StoreError(RuntimeError):
    """The store cannot be opened or written; one line for the user."""


class Store:
    def __init__(self, root: str | os.PathLike, *, create: bool = True):
        self.root = Path(root)
        self.db_path = self.root / "results.sqlite"
        if not create and not self.db_path.exists():
            raise StoreError(f"no store at {self.root} (expected {self.db_path})")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError(f"{self.root} is not writable")
            self._db = sqlite3.connect(self.db_path, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot use store {self.root}: {exc}") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def has(self, cell_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM cells WHERE cell_id=?", (cell_id,)).fetchone() is not None

    def get(self, cell_id: str) -> Record | None:
        row = self._db.execute("SELECT record FROM cells WHERE cell_id=?", (cell_id,)).fetchone()
        return Record.from_json(row[0]) if row else None

    def put(self, record: Record, *, replace: bool = False) -> None:
        """Insert in one transaction. An existing row is only replaced when asked (re-scoring)."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        try:
            with self._db:
                self._db.execute(
                    f"{verb} INTO cells VALUES (?,?,?,?,?,?,?,?)",
                    (record.cell_id, record.variant_id, record.label, record.dataset, record.seed,
                     record.status, record.to_json(), record.created_at))
        except sqlite3.IntegrityError:
            raise StoreError(f"cell {record.cell_id} is already stored; not overwritten") from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to store {self.root}: {exc}") from None

    def records(self, status: str | None = None, ids: list[str] | None = None) -> Iterator[Record]:
        sql, args = "SELECT record FROM cells", []
        where = []
        if status:
            where.append("status=?")
            args.append(status)
        if ids:
            where.append(f"cell_id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if where:
            sql += " WHERE " + " AND ".join(where)
        for (text,) in self._db.execute(sql + " ORDER BY created_at", args).fetchall():
            yield Record.from_json(text)

    def put_grid(self, name: str, spec: dict, members: list[dict]) -> None:
        """Record a grid and its cells in one transaction (replacing what it recorded before).
        Each member: {"design", "dataset", "cell_id", "variant_id", "info": {...}}."""
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO grids VALUES (?,?,?)",
                                 (name, json.dumps(spec, sort_keys=True), time.time()))
                self._db.execute("DELETE FROM members WHERE grid=?", (name,))
                self._db.executemany(
                    "INSERT OR REPLACE INTO members VALUES (?,?,?,?,?,?)",
                    [(name, m["design"], m["dataset"], m["cell_id"], m["variant_id"],
                      json.dumps(m.get("info", {}), sort_keys=True)) for m in members])
        except sqlite3.Error as exc:
            raise StoreError(f"cannot write to store {self.root}: {exc}") from None

    def grids(self) -> dict[str, dict]:
        rows = self._db.execute("SELECT name, spec FROM grids ORDER BY name").fetchall()
        return {name: json.loads(spec) for name, spec in rows}

    def members(self, grid: str | None = None) -> list[dict]:
        sql = "SELECT grid, design, dataset, cell_id, variant_id, info FROM members"
        rows = self._db.execute(sql + (" WHERE grid=?" if grid else "") + " ORDER BY rowid",
                                (grid,) if grid else ()).fetchall()
        return [{"grid": g, "design": d, "dataset": ds, "cell_id": c, "variant_id": v,
                 "info": json.loads(i)} for g, d, ds, c, v, i in rows]

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM cells GROUP BY status").fetchall()
        return {status: n for status, n in rows}

    def resolve_id(self, prefix: str) -> str:
        """A full cell id from a unique prefix."""
        rows = self._db.execute("SELECT cell_id FROM cells WHERE cell_id LIKE ?",
                                (prefix + "%",)).fetchall()
        if len(rows) != 1:
            what = "no" if not rows else "more than one"
            raise StoreError(f"{what} stored cell matches id '{prefix}'")
        return rows[0][0]
