"""Fencing tokens and file digests: what makes a store's files trustworthy across paused
processes, flipped bits and crashes. Torch-free (the report and `check` use the digest side).

Fencing. Taking a cell's lease (`bench.schedule.leases.Leases.acquire`) registers a `Fence`
here: the store, the cell, the owner and the lease's attempt number (the *epoch*: every takeover
increments it). Every write the cell makes asks its fence first, at the moment of the write:

- a checkpoint or sample file: the new file's sha256 is recorded in the store's `files` table in
  one `BEGIN IMMEDIATE` transaction that first checks the lease row still names this owner and
  epoch and that its heartbeat is not older than the lease timeout; only then is the file moved
  into place;
- the record: `Store.put` does the same check inside the transaction that inserts the record.

A holder whose lease was taken (or whose heartbeat fell behind the timeout: a paused process, a
starved heartbeat) gets `LeaseLost` (a BaseException, so no `except Exception` turns it into a
`failed` record): it stops and writes nothing. The heartbeat thread marks the fence lost as soon
as it sees either, so a trainer stops at its next step (`Fence.lost`).

Digests. `files(cell_id, name, sha256, prev_sha256, size, epoch, at)`: the digest of the current
file and of the one before it. A checkpoint is used only when its sha256 is one of the two (the
previous one: a crash between recording and renaming, or the kept `checkpoint.prev.pt`); a cell
without a row (a store written before digests) is read as before.
"""
from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from pathlib import Path

from bench.store import locks
from bench.store.pause_guard import writing

FILES_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    cell_id     TEXT NOT NULL,
    name        TEXT NOT NULL,   -- checkpoint.pt, samples.npz, samples.png
    sha256      TEXT NOT NULL,   -- the current file's digest
    prev_sha256 TEXT,            -- the file's digest before the last write (the kept previous)
    size        INTEGER NOT NULL,
    epoch       INTEGER,         -- the lease attempt that wrote it (NULL: written without a lease)
    at          REAL NOT NULL,
    PRIMARY KEY (cell_id, name)
);
"""


class LeaseLost(BaseException):
    """This process no longer holds the cell's lease: it must stop and write nothing. A
    BaseException, so `except Exception` (which stores a cell as failed) lets it through."""

    def __init__(self, message: str, cell_id: str = ""):
        super().__init__(message)
        self.cell_id = cell_id


class DigestMismatch(RuntimeError):
    """A file's sha256 is not the one the store recorded for it (one line)."""


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def lease_timeout() -> float:
    """Seconds of silence after which a lease is taken over ($GANBENCH_LEASE_TIMEOUT, 120)."""
    return float(os.environ.get("GANBENCH_LEASE_TIMEOUT", "120"))


def _key(db_path: str | os.PathLike, cell_id: str) -> tuple[str, str]:
    return os.path.realpath(db_path), cell_id


def cell_of_folder(folder: str | os.PathLike) -> tuple[Path, str] | None:
    """(results.sqlite, cell id) for a store's cell folder `<root>/cells/<id>`, else None."""
    folder = Path(os.path.realpath(folder))
    if folder.parent.name != "cells":
        return None
    db = folder.parent.parent / "results.sqlite"
    return (db, folder.name) if db.is_file() else None


class Fence:
    """A held lease's token: (store, cell, owner, epoch). `check(db)` inside a write
    transaction raises LeaseLost unless the lease row is still ours and alive."""

    def __init__(self, db_path: str | os.PathLike, cell_id: str, owner: str, epoch: int):
        self.db_path, self.cell_id, self.owner, self.epoch = Path(db_path), cell_id, owner, epoch
        self.lost = threading.Event()
        self.why = ""

    def mark_lost(self, why: str) -> None:
        if not self.lost.is_set():
            self.why = why
            self.lost.set()

    def message(self) -> str:
        return (f"lost the lease of cell {self.cell_id} (attempt {self.epoch}): {self.why}; "
                f"stopped without writing")

    def check(self, db: sqlite3.Connection, now: float | None = None) -> None:
        """Call inside the write's transaction (after BEGIN IMMEDIATE)."""
        if self.lost.is_set():
            raise LeaseLost(self.message(), self.cell_id)
        now = time.time() if now is None else now
        row = db.execute("SELECT owner, attempts, heartbeat FROM leases WHERE cell_id=?",
                         (self.cell_id,)).fetchone()
        if row is None or row[0] != self.owner or row[1] != self.epoch:
            who = f"{row[0]} (attempt {row[1]})" if row and row[0] else "nobody (released)"
            self.mark_lost(f"it is now held by {who}")
        elif now - row[2] > lease_timeout():
            self.mark_lost(f"its heartbeat fell {now - row[2]:.0f}s behind (timeout "
                           f"{lease_timeout():g}s; was this process paused?)")
        if self.lost.is_set():
            raise LeaseLost(self.message(), self.cell_id)


_FENCES: dict[tuple[str, str], Fence] = {}
_LOCK = threading.Lock()


def register(fence: Fence) -> None:
    with _LOCK:
        _FENCES[_key(fence.db_path, fence.cell_id)] = fence


def unregister(fence: Fence) -> None:
    with _LOCK:
        key = _key(fence.db_path, fence.cell_id)
        if _FENCES.get(key) is fence:
            del _FENCES[key]


def fence_for(db_path: str | os.PathLike, cell_id: str) -> Fence | None:
    with _LOCK:
        return _FENCES.get(_key(db_path, cell_id))


def fence_for_folder(folder: str | os.PathLike) -> Fence | None:
    where = cell_of_folder(folder)
    return fence_for(*where) if where else None


# -- digests ---------------------------------------------------------------------------------------
def _connect(db_path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(db_path, timeout=locks.BUSY_TIMEOUT_S, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(FILES_SCHEMA)
    return db


def record_files(folder: str | os.PathLike, digests: dict[str, tuple[str, int]]) -> None:
    """Record {name: (sha256, size)} for the files about to be moved into the cell folder, in
    one transaction that first checks the cell's fence (LeaseLost when it is not ours). A
    folder outside a store records nothing."""
    where = cell_of_folder(folder)
    if where is None:
        return
    db_path, cell_id = where
    fence = fence_for(db_path, cell_id)
    db = _connect(db_path)
    try:
        with writing():
            db.execute("BEGIN IMMEDIATE")
            try:
                if fence is not None:
                    fence.check(db)
                now = time.time()
                for name, (sha, size) in digests.items():
                    old = db.execute("SELECT sha256 FROM files WHERE cell_id=? AND name=?",
                                     (cell_id, name)).fetchone()
                    db.execute("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)",
                               (cell_id, name, sha, old[0] if old else None, size,
                                fence.epoch if fence else None, now))
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
    except sqlite3.OperationalError as exc:
        locks.raise_if_busy(db_path, f"record {', '.join(digests)} of cell {cell_id}", exc)
        raise
    finally:
        db.close()


def recorded(db_path: str | os.PathLike, cell_id: str, name: str) -> tuple[str, str | None] | None:
    """(sha256, prev_sha256) recorded for a cell's file, or None (no row, no table, or a
    database that cannot be read here: the file is then read as before digests)."""
    db_path = Path(db_path)
    try:
        db = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True,
                             timeout=locks.BUSY_TIMEOUT_S)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT sha256, prev_sha256 FROM files WHERE cell_id=? AND name=?",
                         (cell_id, name)).fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return (row[0], row[1]) if row else None


def verify(path: str | os.PathLike, name: str | None = None, *,
           allow_previous: bool = True) -> str | None:
    """Check a store file against its recorded digest (`name`: the row, default the file's
    name). Returns its sha256 (None when nothing is recorded); DigestMismatch otherwise."""
    path = Path(path)
    where = cell_of_folder(path.parent)
    if where is None:
        return None
    want = recorded(where[0], where[1], name or path.name)
    if want is None:
        return None
    got = sha256_file(path)
    if got == want[0] or (allow_previous and got == want[1]):
        return got
    raise DigestMismatch(f"{path} does not match its recorded sha256 (got {got[:12]}…, "
                         f"recorded {want[0][:12]}…): corrupt or written by a process that "
                         f"had lost its lease; not used")
