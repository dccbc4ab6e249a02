"""Results store: SQLite (WAL) with one row per cell, written in one transaction when the cell
ends, plus a per-cell artifact folder (checkpoints, samples) beside it.

Layout: <root>/results.sqlite, <root>/cells/<cell_id>/...

A store is untrusted input: every read error is one StoreError line naming the file; a folder
inside the store is only ever derived from a well-formed cell id (16 hex digits), and a record's
id must be the one its config hashes to (`checked_cell`), so a planted record cannot point
outside the store. A store we may not write is opened read-only (status, show still work).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import sqlite3
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from bench.core.record import Record
from bench.store import integrity, locks
from bench.store.errors import StoreError
from bench.store.pause_guard import writing

if TYPE_CHECKING:
    from bench.core.config import CellConfig

CELL_ID = re.compile(r"[0-9a-f]{16}")
# C0/C1 control characters (escape sequences, carriage returns...) in text read from a store
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with control characters escaped (`\x1b`, `\n`...): a label or reason from a store
    cannot move the cursor, recolour or clear the terminal it is printed on."""
    if not isinstance(text, str):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)

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
-- Records taken out of `cells` to be redone (`train --force`): the next record stored for the
-- cell carries them in its history, in the same transaction, so a crash in between loses nothing.
CREATE TABLE IF NOT EXISTS retired (
    cell_id    TEXT NOT NULL,
    event      TEXT NOT NULL,
    at         REAL NOT NULL,
    record     TEXT NOT NULL
);
""" + integrity.FILES_SCHEMA


def _writable(path: Path) -> bool:
    return os.access(path, os.W_OK)


def _history_entry(event: str, at: float, old: Record) -> dict[str, Any]:
    """What a redone record was: everything but what the new one repeats (id, config)."""
    d = dataclasses.asdict(old)
    for key in ("cell_id", "variant_id", "label", "config", "history"):
        d.pop(key)
    return {"event": event, "at": at, **d}


def _printable_record(record: Record) -> Record:
    """Escape control characters in what show, status and the report print of a record (a
    well-formed record has none, so this changes nothing but a planted one)."""
    for key in ("label", "reason", "variant_id", "device"):
        setattr(record, key, printable(getattr(record, key)))
    data = record.config.get("data")
    if isinstance(data, dict) and isinstance(data.get("name"), str):
        data["name"] = printable(data["name"])
    if isinstance(record.metrics, dict):
        record.metrics = {printable(k): v for k, v in record.metrics.items()}
    if isinstance(record.flags, list):
        record.flags = [{k: printable(v) for k, v in f.items()} if isinstance(f, dict) else f
                        for f in record.flags]
    return record


def is_damage(exc: BaseException) -> bool:
    """A damaged database file (not a busy or missing one)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and (
        type(exc) is sqlite3.DatabaseError or "malformed" in text or "not a database" in text
        or "corrupt" in text)


def damaged(db_path: Path, detail: str) -> StoreError:
    """The one line every command prints for a damaged results.sqlite."""
    detail = " ".join(str(detail).split())[:160]
    return StoreError(f"store database {db_path} is damaged ({detail}); run `ganbench check "
                      f"--store {Path(db_path).parent}` (add --repair to salvage every readable "
                      f"record into a fresh database)")


def quick_check(db: sqlite3.Connection, db_path: Path) -> None:
    """`PRAGMA quick_check` (every page's b-tree structure, no index cross-check): StoreError
    naming the file when it reports anything but ok."""
    try:
        rows = db.execute("PRAGMA quick_check(3)").fetchall()
    except sqlite3.DatabaseError as exc:
        raise damaged(db_path, exc) from None
    if rows != [("ok",)]:
        raise damaged(db_path, "; ".join(str(r[0]) for r in rows))


class Store:
    def __init__(self, root: str | os.PathLike, *, create: bool = True):
        """`create=False`: the store must exist; it is opened read-only when we may not write
        it (writes then fail with one line)."""
        self.root = Path(root)
        self.db_path = self.root / "results.sqlite"
        self.read_only = False
        if not create and not self.db_path.is_file():
            raise StoreError(f"no store at {self.root} (expected {self.db_path})")
        existed = self.db_path.is_file()
        try:
            if not create and not (_writable(self.root) and _writable(self.db_path)):
                self.read_only = True
                self._db = self._connect_read_only()
                quick_check(self._db, self.db_path)
                return
            self.root.mkdir(parents=True, exist_ok=True)
            if not _writable(self.root):
                raise PermissionError(f"{self.root} is not writable")
            self._db = sqlite3.connect(self.db_path, timeout=locks.BUSY_TIMEOUT_S)
            if existed:  # a damaged file is one line naming it, before anything reads or writes
                quick_check(self._db, self.db_path)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except StoreError:
            raise
        except (OSError, sqlite3.Error) as exc:
            if is_damage(exc):
                raise damaged(self.db_path, exc) from None
            raise StoreError(f"cannot use store {self.db_path}: {exc}") from None

    def _connect_read_only(self) -> sqlite3.Connection:
        uri = self.db_path.absolute().as_uri()
        try:
            db = sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=locks.BUSY_TIMEOUT_S)
            db.execute("SELECT 1 FROM cells LIMIT 1").fetchall()
        except sqlite3.OperationalError:
            # a WAL database in a folder we cannot write has no -shm file to share: read it
            # as an immutable file instead (nobody may write it from here anyway)
            db = sqlite3.connect(f"{uri}?immutable=1", uri=True, timeout=locks.BUSY_TIMEOUT_S)
            db.execute("SELECT 1 FROM cells LIMIT 1").fetchall()
        return db

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading: every error is one line naming the file ------------------------------------
    def _query(self, sql: str, args: tuple | list = ()) -> list[tuple]:
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise damaged(self.db_path, exc) from None
            raise StoreError(f"cannot read store {self.db_path}: {exc}") from None

    def _record(self, text: str, row_id: str) -> Record:
        if not isinstance(row_id, str) or not CELL_ID.fullmatch(row_id):
            raise StoreError(f"invalid cell id {printable(repr(row_id))} in {self.db_path}: not "
                             f"16 hex digits; refusing to use it (`ganbench check --store "
                             f"{self.root} --repair` sets such rows aside)")
        try:
            record = Record.from_json(text)
            if not isinstance(record.config, dict) or not isinstance(record.config.get("data"), dict):
                raise ValueError("its config is not a cell config")
            record.dataset, record.seed  # noqa: B018 (summary lines and tables need both)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            reason = " ".join(str(exc).split())[:160]
            raise StoreError(f"invalid record for cell {row_id!r} in {self.db_path}: "
                             f"{type(exc).__name__}: {reason}") from None
        if record.cell_id != row_id:
            raise StoreError(f"invalid record in {self.db_path}: row {row_id!r} holds a record "
                             f"of cell {printable(repr(record.cell_id))}")
        return _printable_record(record)

    def cell_dir(self, cell_id: str) -> Path:
        """The cell's artifact folder; only a well-formed id names one (never a path)."""
        if not isinstance(cell_id, str) or not CELL_ID.fullmatch(cell_id):
            raise StoreError(f"refusing cell id {cell_id!r} from {self.db_path}: "
                             f"not 16 hex digits")
        return self.root / "cells" / cell_id

    def checked_cell(self, record: Record) -> "CellConfig":
        """The record's cell config, refused unless it hashes to the record's id: every path
        and checkpoint the store hands out follows from a recomputed id, never from text."""
        from bench.core.config import CellConfig, ConfigError

        try:
            cell = CellConfig.from_dict(record.config)
        except ConfigError as exc:
            raise StoreError(f"invalid record for cell {record.cell_id!r} in {self.db_path}: "
                             f"{exc}") from None
        if cell.cell_id != record.cell_id:
            raise StoreError(f"record {record.cell_id!r} in {self.db_path} does not match its "
                             f"config (which hashes to {cell.cell_id}); refusing to use it")
        return cell

    def has(self, cell_id: str) -> bool:
        return bool(self._query("SELECT 1 FROM cells WHERE cell_id=?", (cell_id,)))

    def get(self, cell_id: str) -> Record | None:
        rows = self._query("SELECT record FROM cells WHERE cell_id=?", (cell_id,))
        return self._record(rows[0][0], cell_id) if rows else None

    # -- writing ------------------------------------------------------------------------------
    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"store {self.db_path} is read-only here; nothing was written")

    def put(self, record: Record, *, replace: bool = False) -> None:
        """Insert in one transaction. An existing row is only replaced when asked (re-scoring).
        Records retired for this cell (`retire`) join the new record's history in the same
        transaction. While this process holds the cell's lease, the transaction first checks
        the lease's fence (`bench.store.integrity`): LeaseLost, and nothing written, when the
        lease was taken over or its heartbeat fell behind."""
        self._check_writable()
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        fence = integrity.fence_for(self.db_path, record.cell_id)
        try:
            with writing(), self._db:
                if fence is not None:  # the check and the write in one transaction
                    self._db.execute("BEGIN IMMEDIATE")
                    fence.check(self._db)
                retired = self._db.execute(
                    "SELECT event, at, record FROM retired WHERE cell_id=? ORDER BY at",
                    (record.cell_id,)).fetchall()
                history = list(record.history)
                for event, at, text in retired:
                    old = self._record(text, record.cell_id)
                    history = old.history + [_history_entry(event, at, old)] + history
                stored = dataclasses.replace(record, history=history)
                self._db.execute(
                    f"{verb} INTO cells VALUES (?,?,?,?,?,?,?,?)",
                    (stored.cell_id, stored.variant_id, stored.label, stored.dataset, stored.seed,
                     stored.status, stored.to_json(), stored.created_at))
                self._db.execute("DELETE FROM retired WHERE cell_id=?", (record.cell_id,))
        except sqlite3.IntegrityError:
            raise StoreError(f"cell {record.cell_id} is already stored; not overwritten") from None
        except sqlite3.Error as exc:
            if is_damage(exc):
                raise damaged(self.db_path, exc) from None
            locks.raise_if_busy(self.db_path, f"store the record of cell {record.cell_id}", exc)
            raise StoreError(f"cannot write to store {self.db_path}: {exc}") from None
        record.history = history

    def retire(self, cell_id: str, event: str) -> Record | None:
        """Take a cell's record out of `cells` so the cell is trained again (one transaction).
        The old record is kept in `retired` until the next record of the cell is stored, which
        then carries it in its history (`{"event": event, "at", ...the old record}`). Returns
        the old record, or None when the cell is not stored."""
        self._check_writable()
        old = self.get(cell_id)
        if old is None:
            return None
        try:
            with writing(), self._db:
                self._db.execute("INSERT INTO retired VALUES (?,?,?,?)",
                                 (cell_id, event, time.time(), old.to_json()))
                self._db.execute("DELETE FROM cells WHERE cell_id=?", (cell_id,))
        except sqlite3.Error as exc:
            locks.raise_if_busy(self.db_path, f"retire the record of cell {cell_id}", exc)
            raise StoreError(f"cannot write to store {self.db_path}: {exc}") from None
        return old

    def records(self, status: str | None = None, ids: list[str] | None = None) -> Iterator[Record]:
        sql, args = "SELECT cell_id, record FROM cells", []
        where = []
        if status:
            where.append("status=?")
            args.append(status)
        if ids:
            where.append(f"cell_id IN ({','.join('?' * len(ids))})")
            args.extend(ids)
        if where:
            sql += " WHERE " + " AND ".join(where)
        for cell_id, text in self._query(sql + " ORDER BY created_at", args):
            yield self._record(text, cell_id)

    def put_grid(self, name: str, spec: dict, members: list[dict]) -> None:
        """Record a grid and its cells in one transaction (replacing what it recorded before).
        Each member: {"design", "dataset", "cell_id", "variant_id", "info": {...}}."""
        self._check_writable()
        try:
            with writing(), self._db:
                self._db.execute("INSERT OR REPLACE INTO grids VALUES (?,?,?)",
                                 (name, json.dumps(spec, sort_keys=True), time.time()))
                self._db.execute("DELETE FROM members WHERE grid=?", (name,))
                self._db.executemany(
                    "INSERT OR REPLACE INTO members VALUES (?,?,?,?,?,?)",
                    [(name, m["design"], m["dataset"], m["cell_id"], m["variant_id"],
                      json.dumps(m.get("info", {}), sort_keys=True)) for m in members])
        except sqlite3.Error as exc:
            locks.raise_if_busy(self.db_path, f"record grid {name!r}", exc)
            raise StoreError(f"cannot write to store {self.root}: {exc}") from None

    def _json(self, text: str, what: str) -> Any:
        try:
            return json.loads(text)
        except ValueError as exc:
            raise StoreError(f"invalid {what} in {self.db_path}: {exc}") from None

    def grids(self) -> dict[str, dict]:
        rows = self._query("SELECT name, spec FROM grids ORDER BY name")
        return {name: self._json(spec, f"spec of grid {name!r}") for name, spec in rows}

    def members(self, grid: str | None = None) -> list[dict]:
        sql = "SELECT grid, design, dataset, cell_id, variant_id, info FROM members"
        rows = self._query(sql + (" WHERE grid=?" if grid else "") + " ORDER BY rowid",
                           (grid,) if grid else ())
        out = []
        for g, d, ds, c, v, i in rows:
            info = self._json(i, f"member info of cell {printable(repr(c))}")
            if isinstance(info, dict) and isinstance(info.get("label"), str):
                info["label"] = printable(info["label"])
            out.append({"grid": printable(g), "design": printable(d), "dataset": printable(ds),
                        "cell_id": printable(c), "variant_id": printable(v), "info": info})
        return out

    def counts(self) -> dict[str, int]:
        rows = self._query("SELECT status, COUNT(*) FROM cells GROUP BY status")
        return {status: n for status, n in rows}

    def resolve_id(self, prefix: str) -> str:
        """A full cell id from a unique prefix (hex digits only: no SQL wildcards)."""
        prefix = prefix.strip().lower() if isinstance(prefix, str) else prefix
        if not isinstance(prefix, str) or not re.fullmatch(r"[0-9a-f]{1,16}", prefix):
            raise StoreError(f"--cell expects a cell id or its prefix (hex digits), got {prefix!r}")
        rows = self._query("SELECT cell_id FROM cells WHERE substr(cell_id, 1, ?) = ?",
                           (len(prefix), prefix))
        if len(rows) != 1:
            what = "no" if not rows else "more than one"
            raise StoreError(f"{what} stored cell matches id '{prefix}' in {self.db_path}")
        return rows[0][0]
