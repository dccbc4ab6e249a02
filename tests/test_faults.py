"""Faults that must not stop a grid: a raising cell, a worker killed by the OS, a corrupt
checkpoint, kill -9 of the main process with an immediate rerun, Ctrl-C and SIGTERM.

These run with fused groups on (the default: TINY_GRID's cells fuse in pairs, so a worker holds
the leases of two cells at once); the guarantees are stated per cell, for the cells running at
the moment of the fault, so they hold alike for a cell trained alone (`--no-fuse`)."""
import os
import signal
import subprocess
import threading
import time

import pytest

from bench.cli import main
from bench.schedule.executor import run_cells
from bench.schedule.grid import load_grid
from bench.schedule.runner import run_cell
from bench.store import Store
from bench.train import Trainer
from tests.scheduler_util import (TINY_GRID, cli_cmd, lease_attempts, lease_owners, leased_cells,
                                  wait_for)
from tests.tiny import tiny_cell


@pytest.fixture
def grid(tmp_path):
    def make(steps):
        path = tmp_path / f"g{steps}.toml"
        path.write_text(TINY_GRID.format(steps=steps))
        return path
    return make


@pytest.mark.parametrize("fuse", ["fused", "alone"])
def test_a_raising_cell_is_stored_failed_the_grid_goes_on_and_retry_reruns_it(
        grid, tmp_path, capsys, monkeypatch, fuse):
    from bench.train.fused import FusedTrainer

    path, store = grid(8), tmp_path / "s"
    real_step, real_fused_step = Trainer.train_step, FusedTrainer.train_step

    def broken_step(self):
        if self.cell.label == "label_smoothing" and self.cell.seed == 1 and self.step == 3:
            raise RuntimeError("simulated fault\nsecond line")
        return real_step(self)

    def broken_fused_step(self):  # the same fault in the fused group that holds that cell
        if any(t.cell.label == "label_smoothing" and t.cell.seed == 1 for t in self.trainers) \
                and self.step == 3:
            raise RuntimeError("simulated fault\nsecond line")
        return real_fused_step(self)

    monkeypatch.setattr(Trainer, "train_step", broken_step)
    monkeypatch.setattr(FusedTrainer, "train_step", broken_fused_step)
    argv = ["run", "--grid", str(path), "--store", str(store), "--workers", "1",
            "--curve-every", "0"] + (["--no-fuse"] if fuse == "alone" else [])
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert "3 done, 1 failed" in out and "1 cell(s) failed" in err
    assert "Traceback" not in out + err
    if fuse == "fused":  # the group's cells went on alone; only the faulty one failed
        assert "a fused group of 2 cells raised RuntimeError: simulated fault" in err
    with Store(store) as s:
        failed = next(s.records(status="failed"))
    assert failed.reason == "RuntimeError: simulated fault second line"
    assert "Traceback" in failed.error and "broken_step" in failed.error
    assert failed.runtime["threads"] == 1 and failed.step == 3

    # without --retry a rerun keeps the failed record; with it the cell trains again
    assert main(argv) == 1
    monkeypatch.setattr(Trainer, "train_step", real_step)
    assert main(argv + ["--retry", "failed,diverged"]) == 0
    with Store(store) as s:
        redone = s.get(failed.cell_id)
    assert redone.status == "done" and redone.step == 8
    assert redone.history[-1]["event"] == "retry"
    assert redone.history[-1]["status"] == "failed"
    assert redone.history[-1]["reason"] == failed.reason
    assert main(argv + ["--retry", "finished"]) == 2


def test_a_corrupt_checkpoint_is_moved_aside_and_the_cell_restarts(tmp_path, capsys):
    cell = tiny_cell(steps=6, checkpoint_every=2)
    with Store(tmp_path / "s") as store:
        assert run_cell(cell, store, progress=False, stop_after=4, curve_every=0) is None
        ckpt = store.cell_dir(cell.cell_id) / "checkpoint.pt"
        ckpt.write_bytes(ckpt.read_bytes()[:100])  # truncated by a crash or a full disk
        (ckpt.parent / "checkpoint.prev.pt").unlink()  # no previous one to fall back to
        capsys.readouterr()
        record = run_cell(cell, store, progress=False, curve_every=0)
    err = capsys.readouterr().err
    aside = [p for p in ckpt.parent.iterdir() if p.name.startswith("checkpoint.pt.corrupt-")]
    assert len(aside) == 1 and aside[0].stat().st_size == 100
    assert f"checkpoint {ckpt}" in err and "restarts from step 0" in err
    assert err.count("\n") == 1
    assert record.status == "done" and record.step == 6
    event = record.history[0]
    assert event["event"] == "restart" and event["moved_to"] == str(aside[0])
    with Store(tmp_path / "fresh") as store:
        fresh = run_cell(cell, store, progress=False, curve_every=0)
    assert fresh.metrics == record.metrics and fresh.curves == record.curves


def test_a_worker_killed_by_the_os_is_retried_and_the_grid_finishes(grid, tmp_path, capsys):
    path, store = grid(150), tmp_path / "s"
    killed, held = [], set()

    def kill_first_worker():  # the OOM killer, as seen from the scheduler
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            try:
                owners = lease_owners(store)
            except Exception:
                owners = []
            if owners:
                pid = int(owners[0].split(":")[1])
                time.sleep(0.2)  # a fused group takes its cells' leases one after another
                held.update(leased_cells(store, owners[0]))
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    killer = threading.Thread(target=kill_first_worker, daemon=True)
    killer.start()
    records = list(run_cells(load_grid(str(path)).cells, store, workers=2, progress=False,
                             curve_every=0))
    killer.join()
    assert killed and {r.status for r in records} == {"done"} and len(records) == 4
    assert "worker killed by SIGKILL" in capsys.readouterr().err
    attempts = lease_attempts(store)
    assert held and len(attempts) == 4
    # only the killed worker's cells (one, or its fused group's) ran twice
    assert {cid: n for cid, n in attempts.items() if n != 1} == {cid: 2 for cid in held}


def _stored(store):
    with Store(store) as s:
        return {r.cell_id: r for r in s.records()}


def _pid_gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "Z"


@pytest.mark.parametrize("moment", [
    "training",
    # the same mechanism at another moment; the case above covers it in CI
    pytest.param("after_a_record", marks=pytest.mark.slow)])
def test_kill_9_of_the_main_process_then_a_rerun_trains_each_cell_once(
        grid, tmp_path, moment):
    path = grid(600)
    reference = {r.cell_id: r for r in run_cells(load_grid(str(path)).cells, tmp_path / "ref",
                                                 progress=False, curve_every=0)}
    store = tmp_path / "s"
    cmd = cli_cmd("run", "--grid", str(path), "--store", str(store), "--workers", "2",
                  "--curve-every", "0")
    main_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if moment == "training":
        # any cell in training (not "both workers at once": on a loaded machine one worker can
        # finish every tiny cell while the other is still starting, which made this flaky)
        assert wait_for(lambda: len(lease_owners(store)) >= 1)
    else:
        assert wait_for(lambda: len(_stored(store)) >= 1)
    owners, running = lease_owners(store), leased_cells(store)
    main_proc.kill()
    main_proc.wait()
    # the workers die with their parent: nothing keeps training
    assert wait_for(lambda: all(_pid_gone(int(o.split(":")[1])) for o in owners), 10)
    before = _stored(store)
    assert len(before) < len(reference)  # killed while cells were still to train
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = _stored(store)
    assert set(after) == set(reference) and {r.status for r in after.values()} == {"done"}
    attempts = lease_attempts(store)
    assert all(attempts[cid] == 1 for cid in before)  # stored before the kill: never again
    running |= set(lease_attempts(store)) - set(before)  # leased between the two reads
    # at most the cells running at the kill (2 alone, or 2 workers' fused groups) resumed
    assert all(n <= 1 + (cid in running) for cid, n in attempts.items())
    for cid, ref in reference.items():  # resumed cells end exactly like an uninterrupted run
        assert after[cid].metrics == ref.metrics and after[cid].curves == ref.curves


def _stop_while_two_cells_train(grid, store, send, *options, **popen):
    """Start a 2-worker run of long cells, call `send(proc)` once both workers train; returns
    the exit code, stderr, the seconds from the signal to the exit and how many cells were
    running (2 alone; with fused groups, every cell of both workers' groups)."""
    cmd = cli_cmd("run", "--grid", str(grid(3000)), "--store", str(store), "--workers", "2",
                  "--curve-every", "0", *options)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **popen)
    assert wait_for(lambda: len(set(lease_owners(store))) == 2)
    time.sleep(0.5)
    running = len(lease_owners(store))
    sent = time.monotonic()
    send(proc)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err, time.monotonic() - sent, running


def test_ctrl_c_stops_within_seconds_keeps_checkpoints_and_prints_the_resume_command(
        grid, tmp_path):
    store = tmp_path / "s"
    # to the main process only; it forwards to the workers
    code, err, took, running = _stop_while_two_cells_train(
        grid, store, lambda proc: proc.send_signal(signal.SIGINT))
    assert code == 130 and took < 15
    assert "Resume with:" in err and f"--store {store}" in err
    assert "Traceback" not in err
    checkpoints = list(store.glob("cells/*/checkpoint.pt"))
    assert running >= 2 and len(checkpoints) == running  # every running cell wrote one
    assert lease_owners(store) == []  # leases released


@pytest.mark.parametrize("to", [
    "group",  # Slurm / docker stop: every process of the run gets SIGTERM, the workers too
    pytest.param("main", marks=pytest.mark.slow)])  # timeout(1): the main process only
def test_sigterm_stops_like_ctrl_c_with_checkpoints_a_summary_and_the_resume_command(
        grid, tmp_path, to):
    store = tmp_path / "s"

    def send(proc):
        if to == "group":
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    code, err, took, running = _stop_while_two_cells_train(
        grid, store, send, "--eval-seed", "7", start_new_session=True)
    assert code == 143 and took < 15, err
    assert "cells:" in err and "not run" in err  # the summary
    assert "interrupted (SIGTERM)" in err and "Resume with:" in err
    assert "--eval-seed 7" in err  # the resume command keeps the protocol
    assert "Traceback" not in err
    assert len(list(store.glob("cells/*/checkpoint.pt"))) == running  # running cells did
    assert lease_owners(store) == []  # leases released


def test_sigterm_to_one_worker_alone_checkpoints_and_a_fresh_worker_resumes_its_cell(
        grid, tmp_path):
    path, store = grid(600), tmp_path / "s"
    cmd = cli_cmd("run", "--grid", str(path), "--store", str(store), "--workers", "2",
                  "--curve-every", "0")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert wait_for(lambda: len(lease_owners(store)) >= 1)
    owner = lease_owners(store)[0]
    time.sleep(0.2)  # a fused group takes its cells' leases one after another
    held = leased_cells(store, owner)
    os.kill(int(owner.split(":")[1]), signal.SIGTERM)  # not the run: it goes on
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert {r.status for r in _stored(store).values()} == {"done"} and len(_stored(store)) == 4
    attempts = lease_attempts(store)  # only that worker's cells (one, or its group's) twice
    assert held and {cid: n for cid, n in attempts.items() if n != 1} == {c: 2 for c in held}
    assert "Traceback" not in err


def test_ctrl_c_in_process_checkpoints_the_running_cell_and_resumes_exactly(grid, tmp_path):
    from bench.schedule.runner import STOP

    path, store = grid(400), tmp_path / "s"
    cells = load_grid(str(path)).cells

    held = set()

    def press_ctrl_c():  # while a cell (alone, or a fused group's) trains
        if wait_for(lambda: len(lease_owners(store)) >= 1, 60):
            time.sleep(0.3)
            held.update(leased_cells(store))
            os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    with pytest.raises(KeyboardInterrupt):
        list(run_cells(cells, store, workers=1, progress=False, curve_every=0))
    presser.join()
    assert not STOP.is_set() and lease_owners(store) == []
    assert held and not held & set(_stored(store))
    assert len(list(store.glob("cells/*/checkpoint.pt"))) == len(held) + len(_stored(store))
    resumed = {r.cell_id: r for r in run_cells(cells, store, progress=False, curve_every=0)}
    fresh = {r.cell_id: r for r in run_cells(cells, tmp_path / "fresh", progress=False,
                                             curve_every=0)}
    for cid, r in fresh.items():
        assert resumed[cid].metrics == r.metrics and resumed[cid].curves == r.curves


SCORING_GRID = """
description = "kill while scoring"
design = "baseline"
seeds = [0]

[[data]]
name = "digits"
steps = 150
batch_size = 32
width = 8
checkpoint_every = 0
"""


def test_kill_9_while_scoring_then_a_rerun_scores_without_retraining(tmp_path):
    """checkpoint_every = 0: the only checkpoint is the final one, written when training ends and
    before scoring, so its existence marks the scoring phase. A fresh metrics cache makes the
    worker train the digit classifier first, which keeps scoring long enough to be killed in."""
    import torch

    path = tmp_path / "g.toml"
    path.write_text(SCORING_GRID)
    (cell,) = load_grid(str(path)).cells
    reference = next(iter(run_cells([cell], tmp_path / "ref", progress=False, curve_every=0)))
    store = tmp_path / "s"
    env = {**os.environ, "GANBENCH_CACHE": str(tmp_path / "fresh-cache")}
    cmd = cli_cmd("run", "--grid", str(path), "--store", str(store), "--workers", "2",
                  "--curve-every", "0")
    final = store / "cells" / cell.cell_id / "checkpoint.pt"
    main_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 env=env)
    assert wait_for(final.exists)
    owners, running = lease_owners(store), leased_cells(store)
    main_proc.kill()
    main_proc.wait()
    assert wait_for(lambda: all(_pid_gone(int(o.split(":")[1])) for o in owners), 10)
    assert _stored(store) == {}  # killed before the record was written
    trained_s = torch.load(final, weights_only=True)["train_seconds"]

    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert rerun.returncode == 0, rerun.stderr
    after = _stored(store)[cell.cell_id]
    assert after.status == "done" and after.step == cell.train.steps
    # resumed from the final checkpoint: no step trained again, scores as uninterrupted
    assert after.timings["train_s"] - trained_s < 0.2 < trained_s
    assert after.metrics == reference.metrics and after.curves == reference.curves
