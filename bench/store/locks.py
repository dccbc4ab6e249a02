"""Who holds a store's SQLite write lock, for the one line a busy store fails with.

SQLite's locks are the holder's file locks: nobody else can break them, and a process stopped
inside a write transaction (SIGSTOP, Ctrl-Z, a frozen VM, a debugger) keeps the store's write
lock until it resumes or dies. Every other writer (lease takeovers included) then waits
BUSY_TIMEOUT_S and fails. The store keeps its write transactions to a few statements (no file
I/O, no training inside one), so that window is short; when it does happen, the error names the
holder's pid and whether it is stopped, instead of SQLite's bare "database is locked".

Linux only (/proc/locks, /proc/PID/stat); elsewhere the error says the lock is held elsewhere.
"""
from __future__ import annotations

import os
import sqlite3

from bench.store.errors import StoreBusy

BUSY_TIMEOUT_S = 60.0  # how long a write waits for another process's transaction to end

# The WAL write lock: one byte of the -shm file (WALINDEX_LOCK_OFFSET 120 + WAL_WRITE_LOCK 0 in
# SQLite's wal.c), taken from BEGIN IMMEDIATE (or a statement's first write) to COMMIT.
_WAL_WRITE_BYTE = 120


def is_busy(exc: BaseException) -> bool:
    """SQLite gave up waiting for another connection's lock."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state is [0], start time [19]), or None where it
    cannot be read (no such process, no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def write_lock_holder(db_path: str | os.PathLike) -> int | None:
    """The pid of the process holding the WAL write lock of `db_path`, or None (nobody, this
    process, or not knowable here)."""
    try:
        st = os.stat(f"{db_path}-shm")
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    return holder_in(lines, os.major(st.st_dev), os.minor(st.st_dev), st.st_ino, os.getpid())


def holder_in(lines: list[str], major: int, minor: int, inode: int, me: int) -> int | None:
    """The pid holding the WAL write byte of the file (major:minor:inode) in /proc/locks lines.
    The device must match too (another file system's inode of that number is another file);
    where no line does, a unique inode-only match is taken, since an overlay file system
    (containers) reports the lower device in /proc/locks but its own in stat."""
    exact, by_inode = set(), set()
    for line in lines:
        # "1: POSIX  ADVISORY  WRITE 14781 fe:00:2294801 120 120"
        parts = line.split()
        if len(parts) < 8 or parts[1] != "POSIX" or parts[3] != "WRITE" \
                or parts[6] != str(_WAL_WRITE_BYTE) or not parts[4].isdigit():
            continue
        dev, pid = parts[5].split(":"), int(parts[4])
        if len(dev) != 3 or dev[2] != str(inode) or pid == me:
            continue
        by_inode.add(pid)
        try:
            if (int(dev[0], 16), int(dev[1], 16)) == (major, minor):
                exact.add(pid)
        except ValueError:
            pass
    found = exact or (by_inode if len(by_inode) == 1 else set())
    return min(found) if found else None


def describe_holder(db_path: str | os.PathLike) -> str:
    """Who holds the store's write lock, as the end of a sentence."""
    pid = write_lock_holder(db_path)
    if pid is None:
        return "another process holds its write lock"
    fields = proc_stat(pid)
    state = fields[0] if fields else "?"
    if state in ("T", "t"):
        return (f"its write lock is held by process {pid}, which is stopped (SIGSTOP, Ctrl-Z or "
                f"a debugger): `kill -CONT {pid}` resumes it (or end it) and frees the store")
    return f"its write lock is held by process {pid} (state {state})"


def busy(db_path: str | os.PathLike, doing: str, exc: BaseException) -> StoreBusy:
    """The one line for a write that waited BUSY_TIMEOUT_S for the store's lock."""
    return StoreBusy(f"cannot {doing} in store {db_path}: {exc} after {BUSY_TIMEOUT_S:g}s; "
                     f"{describe_holder(db_path)}")


def raise_if_busy(db_path: str | os.PathLike, doing: str, exc: BaseException) -> None:
    """In a store write's `except`: turn SQLite's busy error into that one line."""
    if is_busy(exc):
        raise busy(db_path, doing, exc) from None
