"""Leases: one trainer per cell across processes. Mechanism tests on the lease table, then two
real `ganbench run` processes on one store."""
import os
import socket
import subprocess
import sys
import time

from bench.core.record import Record
from bench.schedule.leases import Leases, my_owner, owner_alive, start_ticks
from bench.store import Store
from tests.scheduler_util import TINY_GRID, cli_cmd, lease_attempts


def test_a_live_lease_is_busy_a_dead_or_silent_one_is_taken_over(tmp_path):
    with Store(tmp_path) as store, Leases(store.db_path) as leases:
        me = my_owner()
        other_here = f"{socket.gethostname()}:{os.getpid()}:other"  # alive: our own pid
        assert leases.acquire("c1", other_here)[0] == "taken"
        state, lease = leases.acquire("c1", me)
        assert state == "busy" and lease.owner == other_here
        # same host, pid gone: taken over at once, and the attempt is counted
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        assert leases.acquire("c2", f"{socket.gethostname()}:{dead.pid}:x")[0] == "taken"
        state, lease = leases.acquire("c2", me)
        assert state == "taken" and lease.attempts == 2
        # another machine: live until its heartbeat is older than the timeout
        assert leases.acquire("c3", "elsewhere:1:y")[0] == "taken"
        assert leases.acquire("c3", me, timeout=60)[0] == "busy"
        assert leases.acquire("c3", me, timeout=0)[0] == "taken"
        # released: free for the next taker; the count of trainings stays
        leases.release("c3", me)
        assert leases.acquire("c3", other_here)[0] == "taken"
        assert leases.get("c3").attempts == 3
        assert [lease.cell_id for lease in leases.live()] == ["c1", "c2", "c3"]


def test_a_stored_cell_is_not_leased_unless_it_is_redone(tmp_path):
    with Store(tmp_path) as store, Leases(store.db_path) as leases:
        store.put(Record(cell_id="c1", variant_id="v", label="baseline",
                         config={"data": {"name": "ring8"}, "seed": 0}, status="failed"))
        assert leases.acquire("c1", my_owner()) == ("stored", None)
        assert leases.acquire("c1", my_owner(), redo=("failed",))[0] == "taken"


def test_owner_alive_rules():
    host = socket.gethostname()
    now = time.time()
    assert owner_alive(f"{host}:{os.getpid()}:u", now, now, 10)
    assert not owner_alive(f"{host}:{os.getpid()}:u", now - 11, now, 10)  # silent
    assert owner_alive("other-host:1:u", now - 5, now, 10)
    me = my_owner()
    host_, pid, started, token = me.split(":")
    assert host_ == host and int(pid) == os.getpid() and started == start_ticks(os.getpid()) != "0"
    assert owner_alive(me, now, now, 10)
    # the same pid, started at another time: a dead owner whose pid was reused, not a live one
    assert not owner_alive(f"{host}:{pid}:{int(started) - 1}:{token}", now, now, 10)


def test_two_runs_on_one_store_train_every_cell_exactly_once(tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text(TINY_GRID.format(steps=150))
    store = tmp_path / "s"
    cmd = cli_cmd("run", "--grid", str(grid), "--store", str(store), "--workers", "1",
                  "--curve-every", "0")
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    with Store(store) as s:
        records = list(s.records())
    trained = [r for r in records if r.status == "done"]
    assert len(trained) == 4 and {r.status for r in records} == {"done"}
    assert lease_attempts(store) == {r.cell_id: 1 for r in trained}
    # both processes report every cell: the one that did not train it picked its record up
    for out, _ in outs:
        assert out.count(" done ") == 4


def test_run_cell_waits_for_a_live_lease_and_returns_the_holders_record(tmp_path, capsys):
    import threading

    from bench.schedule.runner import run_cell
    from tests.tiny import tiny_cell

    cell = tiny_cell(steps=3)
    holder = f"{socket.gethostname()}:{os.getpid()}:holder"  # alive: our own pid
    with Store(tmp_path) as store, Leases(store.db_path) as leases:
        assert leases.acquire(cell.cell_id, holder)[0] == "taken"

        def finish():  # the holder stores the cell a moment later
            time.sleep(1.5)
            with Store(tmp_path) as other, Leases(other.db_path) as theirs:
                other.put(Record(cell_id=cell.cell_id, variant_id=cell.variant_id,
                                 label=cell.label, config=cell.to_dict(), status="done",
                                 reason="stored by the holder"))
                theirs.release(cell.cell_id, holder)

        thread = threading.Thread(target=finish)
        thread.start()
        record = run_cell(cell, store, progress=False, curve_every=0)
        thread.join()
    assert record.reason == "stored by the holder"  # not trained a second time
    assert lease_attempts(tmp_path)[cell.cell_id] == 1  # only the holder's attempt
    assert f"is being trained by {holder}; waiting" in capsys.readouterr().err


def test_retry_redoes_only_the_record_seen_when_scheduling(tmp_path):
    """Two `--retry failed` runs: run A retrains the failed cell and stores a NEW failed record;
    run B, which scheduled the cell when the OLD record was stored, must not train it again."""
    from bench.schedule.runner import run_cell
    from tests.tiny import tiny_cell

    cell = tiny_cell(steps=3)

    def failed(reason, at):
        return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                      config=cell.to_dict(), status="failed", reason=reason, created_at=at)

    with Store(tmp_path) as store, Leases(store.db_path) as leases:
        store.put(failed("old", 1000.0))
        seen = {cell.cell_id: store.get(cell.cell_id).created_at}  # B schedules the cell
        store.put(failed("new, from run A", 2000.0), replace=True)  # A retried it: failed again
        # the lease is refused for the newer record, granted for the one that was seen
        assert leases.acquire(cell.cell_id, my_owner(), redo=("failed",),
                              redo_created=seen[cell.cell_id]) == ("stored", None)
        record = run_cell(cell, store, retry=("failed",), seen=seen, progress=False,
                          curve_every=0)
        assert record.reason == "new, from run A"  # returned, not retrained
        assert leases.get(cell.cell_id) is None  # never handed to a trainer
        # a cell with no record when scheduled (not in `seen`) is not redone either
        assert run_cell(cell, store, retry=("failed",), seen={}, progress=False,
                        curve_every=0).reason == "new, from run A"
        assert leases.get(cell.cell_id) is None
        assert leases.acquire(cell.cell_id, my_owner(), redo=("failed",),
                              redo_created=2000.0)[0] == "taken"  # the record that was seen


def test_a_deferred_retried_cell_waits_for_a_record_newer_than_the_one_seen(tmp_path):
    """While another run holds a retried cell's lease, its old record is not this run's result."""
    from collections import deque

    from bench.schedule.executor import _collect_deferred
    from tests.tiny import tiny_cell

    cell = tiny_cell(steps=3)

    def record(reason, at):
        return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                      config=cell.to_dict(), status="failed", reason=reason, created_at=at)

    with Store(tmp_path) as store:
        store.put(record("old", 1000.0))
        deferred, queue = {cell.cell_id: (cell, time.monotonic() + 60)}, deque()
        seen = {cell.cell_id: 1000.0}
        assert list(_collect_deferred(store, deferred, queue, seen)) == []
        assert cell.cell_id in deferred  # still waiting for the holder
        store.put(record("new", 2000.0), replace=True)  # the holder stored its result
        assert [r.reason for r in _collect_deferred(store, deferred, queue, seen)] == ["new"]
        assert deferred == {} and not queue


def test_ray_a_busy_retried_cell_waits_for_the_holders_new_record(tmp_path, monkeypatch):
    """The Ray executor's rule is the pool's: a retried cell whose lease another run holds is not
    reported with the old record seen at scheduling, but with the holder's new one. A stand-in
    for Ray runs the tasks in process: the first finds the cell busy; by the second the holder
    has stored its record."""
    from bench.schedule import ray_executor
    from tests.tiny import tiny_cell

    cell = tiny_cell(steps=3)

    def record(reason, at):
        return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                      config=cell.to_dict(), status="failed", reason=reason, created_at=at)

    calls = []

    def task(cell_json, store_root, device, opts):
        calls.append(cell_json["seed"])
        if len(calls) == 1:
            return {"state": "busy", "owner": "elsewhere"}
        with Store(store_root) as s:  # the holder's result arrived meanwhile
            s.put(record("new", 2000.0), replace=True)
        return {"state": "stored"}

    class Ref:  # a task's result, run at once
        def __init__(self, reply):
            self.reply = reply

    class FakeRay:
        def is_initialized(self):
            return True

        def cluster_resources(self):
            return {}

        def remote(self, fn):
            class Task:
                def options(self, **kw):
                    return self

                def remote(self, *args):
                    return Ref(task(*args))
            return Task()

        def wait(self, refs, num_returns, timeout):
            return refs[:num_returns], refs[num_returns:]

        def get(self, ref):
            return ref.reply

    monkeypatch.setattr(ray_executor, "_import_ray", FakeRay)
    monkeypatch.setattr(ray_executor, "BUSY_POLL_S", 0.0)
    with Store(tmp_path) as store:
        store.put(record("old", 1000.0))
    opts = {"retry": ("failed",), "seen": {cell.cell_id: 1000.0}}
    got = list(ray_executor.run_ray([cell], tmp_path, address=None, device=None,
                                    cells_per_gpu=None, opts=opts))
    assert [r.reason for r in got] == ["new"] and len(calls) == 2
