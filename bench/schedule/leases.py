"""Leases: one trainer per cell across processes and machines.

Before training a cell, a process takes a lease on it in the store's SQLite file (table `leases`,
one atomic `BEGIN IMMEDIATE` transaction): cell id, owner (`host:pid:start:uuid`), heartbeat time
and the number of times the cell was handed to a trainer (`attempts`). A lease is *live* while its
owner holds it; it can be taken over when

- the owner ran on this host and its pid is gone (or a zombie, or now another process's): killed,
  crashed, OOM-killed; or
- its heartbeat is older than the timeout (an owner on another machine that went silent).

A heartbeat thread refreshes the lease while the cell trains and scores. The lease is released
(owner cleared; the attempt count stays) when the cell is stored or stopped.

Fencing: the attempt count is the lease's epoch. Taking a lease registers a fence
(`bench.store.integrity.Fence`: owner + epoch) that every checkpoint, sample and record write of
the cell checks inside its own transaction, so a holder that was paused past the timeout (SIGSTOP,
Ctrl-Z, a frozen VM) and lost its lease to another run writes nothing when it wakes: it stops
with one line. A heartbeat that falls behind the timeout is a lost lease, not a race: the
heartbeat thread marks the fence lost instead of refreshing a lease someone may have taken.
"""
from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.store import integrity, locks
from bench.store.pause_guard import writing

SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    cell_id   TEXT PRIMARY KEY,
    owner     TEXT,            -- host:pid:start:uuid of the holder; NULL when released
    heartbeat REAL NOT NULL,   -- time.time() of the holder's last sign of life
    attempts  INTEGER NOT NULL -- how many times the cell was handed to a trainer
);
"""
HEARTBEAT_S = 5.0


lease_timeout = integrity.lease_timeout  # $GANBENCH_LEASE_TIMEOUT, default 120 s


def heartbeat_interval() -> float:
    """Seconds between heartbeats: HEARTBEAT_S, or a quarter of a shorter lease timeout."""
    return max(0.05, min(HEARTBEAT_S, lease_timeout() / 4))


_PROCESS_TOKEN = uuid.uuid4().hex[:8]


def start_ticks(pid: int) -> str:
    """When process `pid` started (clock ticks since boot, /proc/PID/stat field 22), or "0" where
    that cannot be read: with the pid it names one process even after the pid is reused."""
    return process_state(pid)[1]


def my_owner() -> str:
    """This process's owner name: host, pid, start time and a uuid (the start time tells a live
    owner from another process that reuses its pid; the uuid tells owners apart anywhere)."""
    return f"{socket.gethostname()}:{os.getpid()}:{start_ticks(os.getpid())}:{_PROCESS_TOKEN}"


def process_state(pid: int) -> tuple[bool, str]:
    """(alive, start ticks) of `pid` from one read of /proc/PID/stat; start "0" where unknown."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False, "0"
    except PermissionError:  # someone else's process: alive
        pass
    fields = locks.proc_stat(pid)  # a zombie (killed, not yet reaped) is dead for our purposes
    alive = not fields or fields[0] != "Z"
    return alive, fields[19] if fields and len(fields) > 19 else "0"


def pid_alive(pid: int) -> bool:
    return process_state(pid)[0]


def owner_alive(owner: str, heartbeat: float, now: float, timeout: float) -> bool:
    """False when the owner ran on this host and its process is gone (or its pid now belongs to
    a process started at another time), or when its heartbeat is older than `timeout`."""
    host, *parts = owner.split(":")
    pid = parts[0] if parts else ""
    if host == socket.gethostname() and pid.isdigit():
        alive, now_started = process_state(int(pid))
        if not alive:
            return False
        started = parts[1] if len(parts) == 3 else "0"  # owners of older versions: no start
        if "0" not in (started, now_started) and started != now_started:
            return False  # the pid was reused by another process
    return now - heartbeat <= timeout


@dataclass(frozen=True)
class Lease:
    cell_id: str
    owner: str | None
    heartbeat: float
    attempts: int


class Leases:
    """The lease table of a store (its own connection; safe to use from any process)."""

    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(db_path)
        try:
            self._db = sqlite3.connect(self.db_path, timeout=locks.BUSY_TIMEOUT_S,
                                       isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            from bench.store.db import damaged, is_damage

            if is_damage(exc):
                raise damaged(self.db_path, exc) from None
            raise  # e.g. a read-only store without a lease table: the caller decides

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "Leases":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def acquire(self, cell_id: str, owner: str, *, redo: tuple[str, ...] = (),
                redo_created: float | None = None,
                timeout: float | None = None) -> tuple[str, Lease | None]:
        """Try to take the lease. Returns ("taken", lease), ("stored", None) when the cell already
        has a record (whose status is not in `redo`, or, given `redo_created`, that is not the
        record stored at that time: a newer one from a concurrent run is not redone twice), or
        ("busy", the live lease)."""
        try:
            with writing():
                return self._acquire(cell_id, owner, redo, redo_created, timeout)
        except sqlite3.DatabaseError as exc:
            from bench.store.db import StoreError, damaged, is_damage

            if is_damage(exc):
                raise damaged(self.db_path, exc) from None
            locks.raise_if_busy(self.db_path, f"take the lease of cell {cell_id}", exc)
            raise StoreError(f"cannot take a lease in store {self.db_path}: {exc}") from None

    def _acquire(self, cell_id, owner, redo, redo_created, timeout) -> tuple[str, Lease | None]:
        timeout = lease_timeout() if timeout is None else timeout
        now = time.time()
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # one writer at a time: check and take atomically
        try:
            row = db.execute("SELECT status, created_at FROM cells WHERE cell_id=?",
                             (cell_id,)).fetchone() if self._has_cells() else None
            if row is not None and (row[0] not in redo
                                    or redo_created is not None and row[1] != redo_created):
                db.execute("ROLLBACK")
                return "stored", None
            cur = db.execute("SELECT owner, heartbeat, attempts FROM leases WHERE cell_id=?",
                             (cell_id,)).fetchone()
            if cur is not None and cur[0] and cur[0] != owner \
                    and owner_alive(cur[0], cur[1], now, timeout):
                db.execute("ROLLBACK")
                return "busy", Lease(cell_id, cur[0], cur[1], cur[2])
            attempts = (cur[2] if cur else 0) + 1
            db.execute("INSERT OR REPLACE INTO leases VALUES (?,?,?,?)",
                       (cell_id, owner, now, attempts))
            db.execute("COMMIT")
            integrity.register(integrity.Fence(self.db_path, cell_id, owner, attempts))
            return "taken", Lease(cell_id, owner, now, attempts)
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _has_cells(self) -> bool:
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='cells'"
                                ).fetchone() is not None

    def heartbeat(self, cell_id: str, owner: str, epoch: int | None = None) -> bool:
        """Refresh a held lease; False when it is no longer ours (taken over, or, given its
        epoch, taken and re-taken since) or its heartbeat already fell behind the timeout."""
        now = time.time()
        sql = "UPDATE leases SET heartbeat=? WHERE cell_id=? AND owner=? AND heartbeat>=?"
        args: tuple = (now, cell_id, owner, now - lease_timeout())
        if epoch is not None:
            sql, args = sql + " AND attempts=?", args + (epoch,)
        with writing():
            return self._db.execute(sql, args).rowcount == 1

    def release(self, cell_id: str, owner: str) -> None:
        try:
            with writing():
                self._release(cell_id, owner)
        except sqlite3.OperationalError as exc:
            locks.raise_if_busy(self.db_path, f"release the lease of cell {cell_id}", exc)
            raise

    def _release(self, cell_id: str, owner: str) -> None:
        fence = integrity.fence_for(self.db_path, cell_id)
        if fence is not None and fence.owner == owner:
            integrity.unregister(fence)
        if fence is not None and fence.owner == owner:  # only the attempt we hold
            self._db.execute("UPDATE leases SET owner=NULL WHERE cell_id=? AND owner=? AND "
                             "attempts=?", (cell_id, owner, fence.epoch))
        else:
            self._db.execute("UPDATE leases SET owner=NULL WHERE cell_id=? AND owner=?",
                             (cell_id, owner))

    def get(self, cell_id: str) -> Lease | None:
        row = self._db.execute("SELECT cell_id, owner, heartbeat, attempts FROM leases "
                               "WHERE cell_id=?", (cell_id,)).fetchone()
        return Lease(*row) if row else None

    def all(self) -> list[Lease]:
        return [Lease(*r) for r in self._db.execute(
            "SELECT cell_id, owner, heartbeat, attempts FROM leases ORDER BY cell_id")]

    def live(self, timeout: float | None = None) -> list[Lease]:
        timeout = lease_timeout() if timeout is None else timeout
        now = time.time()
        return [lease for lease in self.all()
                if lease.owner and owner_alive(lease.owner, lease.heartbeat, now, timeout)]


class Heartbeat:
    """Refreshes a lease from a daemon thread (its own connection) until stopped. When the
    lease turns out taken, or the last refresh is older than the lease timeout (this process
    was paused, or the database was unreachable that long), the cell's fence is marked lost and
    the thread stops refreshing: the trainer stops at its next step and writes nothing."""

    def __init__(self, db_path: Path, cell_id: str, owner: str, every: float | None = None):
        self._stop = threading.Event()
        self._args = (db_path, cell_id, owner, every or heartbeat_interval())
        self.fence = integrity.fence_for(db_path, cell_id)
        self._thread = threading.Thread(target=self._run, daemon=True, name="lease-heartbeat")

    def _run(self) -> None:
        db_path, cell_id, owner, every = self._args
        fence = self.fence
        last_ok = time.time()
        locked = ""  # who held the store's write lock when the last refresh gave up waiting
        with Leases(db_path) as leases:
            while not self._stop.wait(every):
                now = time.time()
                if now - last_ok > lease_timeout():
                    if fence is not None:
                        why = f"the store stayed locked: {locked}" if locked else \
                            "was this process paused?"
                        fence.mark_lost(f"its heartbeat fell {now - last_ok:.0f}s behind "
                                        f"(timeout {lease_timeout():g}s; {why})")
                    return
                try:
                    ok = leases.heartbeat(cell_id, owner, fence.epoch if fence else None)
                except sqlite3.Error as exc:
                    # a busy database now and then is fine: the timeout is longer
                    locked = locks.describe_holder(db_path) if locks.is_busy(exc) else ""
                    continue
                locked = ""
                if ok:
                    last_ok = now
                elif fence is not None:
                    lease = leases.get(cell_id)
                    if lease and lease.owner == owner and lease.attempts == fence.epoch:
                        fence.mark_lost(f"its heartbeat fell {now - lease.heartbeat:.0f}s behind "
                                        f"(timeout {lease_timeout():g}s)")
                    else:
                        who = f"{lease.owner} (attempt {lease.attempts})" \
                            if lease and lease.owner else "nobody"
                        fence.mark_lost(f"it is now held by {who}")
                    return

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
