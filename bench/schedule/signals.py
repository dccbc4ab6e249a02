"""Stop signals and process lifetimes of a run (bench/schedule/executor.py):

- `stop_on_signals()`: while a run is in progress, the first Ctrl-C (SIGINT) or SIGTERM sets
  `runner.STOP` (no new cell starts; running cells checkpoint at their next step and return);
  a second one interrupts at once (`Stopped`);
- `Stopped`: what run_cells raises after a stop, a KeyboardInterrupt naming the signal;
- Ctrl-Z (SIGTSTP) during a run stops each process only outside its store writes
  (bench/store/pause_guard.py), so a stopped run never holds the store's write lock;
- `die_with_parent(pid)`: a worker process dies with its parent (PR_SET_PDEATHSIG on Linux and
  a parent-pid watchdog), so a kill -9 of the main process leaves no orphan training.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager

from bench.schedule.runner import STOP
from bench.store.pause_guard import defer_terminal_stop

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_stopped_by: list[int] = []  # the first stop signal of the current run_cells


class Stopped(KeyboardInterrupt):
    """run_cells stopped by a signal: SIGINT (Ctrl-C) or SIGTERM (timeout, docker stop, Slurm).
    A KeyboardInterrupt, so callers that handle Ctrl-C handle both; `signum` sets the exit code."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def stop_on_signals():
    """First Ctrl-C or SIGTERM: set STOP (cells checkpoint and stop); a second one interrupts at
    once. Outside the main thread signals cannot be handled: nothing is installed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if STOP.is_set():
            raise Stopped(signum)
        STOP.set()
        _stopped_by.append(signum)
        again = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        print(f"\nganbench: {signal.Signals(signum).name}: stopping: running cells write a "
              f"checkpoint ({again} again to quit now)", file=sys.stderr, flush=True)

    before = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    STOP.clear()
    _stopped_by.clear()
    try:
        with defer_terminal_stop():  # Ctrl-Z waits for the end of an open store write
            yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)
        STOP.clear()


def stopped_error() -> Stopped:
    """The Stopped to raise for the current run's first stop signal."""
    return Stopped(_stopped_by[0] if _stopped_by else signal.SIGINT)


def die_with_parent(parent_pid: int) -> None:
    """The kernel kills us when the parent dies (Linux); elsewhere, and as a backstop (the
    signal follows the parent *thread* that started us), a watchdog checks the parent pid."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG = 1
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)

    def watch():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


@contextmanager
def ignoring_stop_signals():
    """SIGINT/SIGTERM ignored inside (start a child here: it inherits that across exec, so a
    stop signal while it boots neither kills it nor prints a traceback); outside the main
    thread it changes nothing."""
    try:
        before = {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}
    except ValueError:  # not the main thread: leave signals alone
        before = {}
    try:
        yield
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)
