"""Ctrl-Z (SIGTSTP) during a run is deferred to the end of the store write in progress
(bench/store/pause_guard.py), so a process stopped from the terminal never holds the store's
write lock; the store's write paths run every statement inside `writing()`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.core.record import Record
from bench.schedule.leases import Leases, my_owner
from bench.store import Store, integrity, locks, pause_guard
from tests.tiny import tiny_cell

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTSTP") or not Path("/proc").is_dir(),
                                reason="job-control signals and /proc (POSIX, Linux)")

WRITER = """
import sys, threading, time
from bench.store.pause_guard import defer_terminal_stop, writing

def write():
    with writing():
        print("in", flush=True)
        sys.stdin.readline()          # the parent says when the write ends
        print("leaving", flush=True)

with defer_terminal_stop():
    if sys.argv[1] == "main":
        write()
    else:                             # a heartbeat-like thread writes; the main thread idles
        t = threading.Thread(target=write)
        t.start()
        while t.is_alive():
            time.sleep(0.01)
    print("after", flush=True)
"""


def state(pid: int) -> str:
    fields = locks.proc_stat(pid)
    return fields[0] if fields else "?"


def wait_state(pid: int, wanted: str, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if state(pid) in wanted:
            return True
        time.sleep(0.02)
    return False


def start(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.parametrize("where", ["main", "thread"])
def test_a_terminal_stop_inside_a_write_waits_for_its_end(where):
    child = start(WRITER, where)
    try:
        assert child.stdout.readline() == "in\n"
        child.send_signal(signal.SIGTSTP)
        time.sleep(0.5)
        assert state(child.pid) not in "Tt", "stopped inside the write"
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "leaving\n"
        assert wait_state(child.pid, "Tt"), "not stopped after the write ended"
        child.send_signal(signal.SIGCONT)
        assert child.stdout.readline() == "after\n"
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.send_signal(signal.SIGCONT)


def test_a_terminal_stop_outside_a_write_stops_at_once_and_the_handler_is_restored():
    code = ("import signal, sys\nfrom bench.store.pause_guard import defer_terminal_stop\n"
            "before = signal.getsignal(signal.SIGTSTP)\n"
            "with defer_terminal_stop():\n    print('ready', flush=True)\n"
            "    sys.stdin.readline()\n"
            "print(signal.getsignal(signal.SIGTSTP) is before, flush=True)\n")
    child = start(code)
    try:
        assert child.stdout.readline() == "ready\n"
        child.send_signal(signal.SIGTSTP)
        assert wait_state(child.pid, "Tt")
        child.send_signal(signal.SIGCONT)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline() == "True\n"
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()


def test_every_statement_of_the_store_writes_runs_inside_writing(tmp_path, monkeypatch):
    """The statements SQLite executes for a record, a retirement, a grid, a lease's take,
    heartbeat and release, and a checkpoint's digests all see an open `writing()`."""
    seen: list[tuple[int, str]] = []

    def trace(db):
        db.set_trace_callback(lambda sql: seen.append((pause_guard._open, sql)))
        return db

    cell = tiny_cell(steps=4)
    record = Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                    config=cell.to_dict(), status="done")
    connect = integrity._connect
    monkeypatch.setattr(integrity, "_connect", lambda path: trace(connect(path)))
    with Store(tmp_path / "s") as store, Leases(store.db_path) as leases:
        trace(store._db)
        trace(leases._db)
        owner = my_owner()
        assert leases.acquire(cell.cell_id, owner)[0] == "taken"
        assert leases.heartbeat(cell.cell_id, owner)
        folder = store.cell_dir(cell.cell_id)
        folder.mkdir(parents=True, exist_ok=True)
        integrity.record_files(folder, {"checkpoint.pt": ("0" * 64, 1)})
        store.put(record)
        leases.release(cell.cell_id, owner)
        store.retire(cell.cell_id, "test")
        store.put_grid("g", {}, [])
    writes = [(n, sql) for n, sql in seen
              if sql.split()[0].upper() in ("BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT")]
    kinds = {sql.split()[0].upper() for _, sql in writes}
    assert kinds == {"BEGIN", "INSERT", "UPDATE", "DELETE", "COMMIT"}
    outside = [sql for n, sql in writes if n < 1]
    assert not outside, outside
    assert pause_guard._open == 0
