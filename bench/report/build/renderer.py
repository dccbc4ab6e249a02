"""Where a report's figures are drawn: a pool of forked worker processes, or this process."""
from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable

from bench.report import figures


def default_workers() -> int:
    """Figure-rendering processes: the CPUs this process may use, at most 4; 1 (in this
    process) where processes cannot be forked."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


def _quietly(fn: Callable, args: tuple, kw: dict) -> tuple[Any, str]:
    """Run a figure job in a worker; what it says on stderr (a bad sample file's warning)
    comes back with its result, for the parent to print."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        return fn(*args, **kw), err.getvalue()


class Renderer:
    """Where the figures are drawn and saved (rendering is most of a report's time): a pool of
    forked worker processes, or this process with `workers` 1 or while `figures.ON_SAVE` has
    hooks (the layout test inspects every figure in the process that draws it). `submit` takes
    a figure function and its arguments and gives a future of what it returns; the report
    waits on them in order, so its listing is the same either way."""

    def __init__(self, workers: int | None = None) -> None:
        workers = default_workers() if workers is None else workers
        self.pool = None
        if workers > 1 and not figures.ON_SAVE:
            # Ctrl-C reaches the report's process, which cancels what has not started
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                            initializer=signal.signal,
                                            initargs=(signal.SIGINT, signal.SIG_IGN))

    def submit(self, fn: Callable, *args, **kw) -> Future:
        if self.pool is not None:
            return self.pool.submit(_quietly, fn, args, kw)
        done: Future = Future()
        done.set_result((fn(*args, **kw), ""))
        return done

    @staticmethod
    def result(future: Future) -> Any:
        value, said = future.result()
        if said:
            print(said, end="", file=sys.stderr, flush=True)
        return value

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None
