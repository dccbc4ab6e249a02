"""Ctrl-Z (SIGTSTP) deferred to the end of the store write in progress.

SQLite's write lock is the holder's file lock (bench/store/locks.py): a process stopped inside a
write transaction keeps every other writer of the store waiting until it resumes, and a
terminal's Ctrl-Z reaches every process of the job, heartbeat threads included, at any moment.
With `defer_terminal_stop()` installed, SIGTSTP stops the process at once when none of its
threads is inside a store write (`writing()`), and otherwise as soon as the last open write
ends; a write that would start while the stop is pending waits until the process is resumed.
SIGSTOP (`kill -STOP`, a debugger) cannot be caught: that case stays the lock's one-line error.
"""
from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

_gate = threading.RLock()  # re-entrant: the handler may run in a thread that holds it
_open = 0        # store writes open in this process, all threads
_pending = False  # a SIGTSTP arrived while a write was open


def _stop_now() -> None:
    os.kill(os.getpid(), signal.SIGSTOP)  # what SIGTSTP's default action does, one step later


@contextmanager
def writing() -> Iterator[None]:
    """Around one store write transaction, from BEGIN to COMMIT or ROLLBACK (any thread)."""
    global _open, _pending
    with _gate:  # held by a pending stop: no write begins until the process resumes
        _open += 1
    try:
        yield
    finally:
        with _gate:
            _open -= 1
            if _pending and _open == 0:
                _pending = False
                _stop_now()  # with the gate held, so no write starts before the stop


def _on_terminal_stop(signum, frame) -> None:
    global _pending
    with _gate:
        if _open:
            _pending = True
        else:
            _stop_now()


@contextmanager
def defer_terminal_stop() -> Iterator[None]:
    """Install the deferring SIGTSTP handler inside (main thread only; elsewhere, and where the
    platform has no SIGTSTP, nothing changes)."""
    tstp = getattr(signal, "SIGTSTP", None)
    try:
        before = signal.signal(tstp, _on_terminal_stop) if tstp is not None else None
    except ValueError:  # not the main thread
        before = None
    try:
        yield
    finally:
        if before is not None:
            signal.signal(tstp, before)
