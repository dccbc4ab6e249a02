"""Integrity (issue 20): fenced leases, verified checkpoints, a repair path, untrusted store
content, bounded grids, exit codes. Each test fails on the code before the issue."""
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.schedule.leases import Heartbeat, Leases, my_owner
from bench.schedule.runner import run_cell
from bench.store import Store, integrity, locks
from bench.store.errors import StoreBusy
from bench.store.integrity import LeaseLost, sha256_file
from bench.train import checkpoint
from tests.scheduler_util import cli_cmd
from tests.tiny import tiny_cell


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- fencing ----------------------------------------------------------------------------------------
def test_a_holder_whose_lease_was_taken_writes_nothing(tmp_path):
    """In-process: take a lease, let another owner take it over, then every write of the first
    holder (checkpoint, record) raises LeaseLost and leaves the files and the table as they were."""
    cell = tiny_cell(steps=4)
    with Store(tmp_path / "s") as store, Leases(store.db_path) as leases:
        assert leases.acquire(cell.cell_id, "me:1:1:a")[0] == "taken"
        folder = store.cell_dir(cell.cell_id)
        ckpt = folder / "checkpoint.pt"
        checkpoint.save_atomic({"step": torch.tensor(1)}, ckpt)  # ours: written
        before = ckpt.read_bytes()
        # another process takes it over (as its Leases.acquire does after our timeout)
        with sqlite3.connect(store.db_path) as db:
            db.execute("UPDATE leases SET owner='other:2:2:b', attempts=attempts+1")
        with pytest.raises(LeaseLost, match="now held by other:2:2:b .attempt 2."):
            checkpoint.save_atomic({"step": torch.tensor(2)}, ckpt)
        assert ckpt.read_bytes() == before
        assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.pt"]  # no temporary
        from bench.schedule.runner import disallowed_record, failed_record

        assert disallowed_record(cell) is None
        with pytest.raises(LeaseLost):
            store.put(failed_record(cell, "x"))
        assert not store.has(cell.cell_id)


def test_a_stale_heartbeat_is_a_lost_lease_even_before_a_takeover(tmp_path, monkeypatch):
    monkeypatch.setenv("GANBENCH_LEASE_TIMEOUT", "5")
    cell = tiny_cell(steps=4)
    with Store(tmp_path / "s") as store, Leases(store.db_path) as leases:
        assert leases.acquire(cell.cell_id, "me:1:1:a")[0] == "taken"
        store._db.execute("UPDATE leases SET heartbeat=heartbeat-60")
        store._db.commit()
        with pytest.raises(LeaseLost, match="heartbeat fell"):
            checkpoint.save_atomic({"step": torch.tensor(2)},
                                   store.cell_dir(cell.cell_id) / "checkpoint.pt")
        assert not leases.heartbeat(cell.cell_id, "me:1:1:a")  # not refreshed back to life


TRAIN = ["train", "--dataset", "ring8", "--batch-size", "32", "--width", "16",
         "--checkpoint-every", "20", "--curve-every", "0", "--metrics", "modes"]


def stop_outside_a_write(pid: int, db_path: Path) -> None:
    """SIGSTOP `pid` at a moment it holds no write transaction. SQLite's write lock is the
    holder's file lock, which nobody can break: a process stopped inside its (few-statement)
    write transaction blocks every writer until it resumes (see the test below). The lease
    takeover is about a holder paused anywhere else, e.g. in the middle of training."""
    for _ in range(100):
        os.kill(pid, signal.SIGSTOP)
        while locks.proc_stat(pid) and locks.proc_stat(pid)[0] not in "TZ":
            time.sleep(0.01)  # the stop is asynchronous
        if locks.write_lock_holder(db_path) != pid:
            return
        os.kill(pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError(f"process {pid} held the store's write lock at 100 stops")


def test_a_holder_stopped_inside_a_write_fails_writers_in_one_line_naming_it(tmp_path,
                                                                              monkeypatch):
    """A process stopped (SIGSTOP, Ctrl-Z) while it holds the store's write lock blocks every
    other writer until it resumes: a lease takeover and a checkpoint's digest then fail after
    the busy timeout with one line naming the stopped pid and how to resume it (not SQLite's
    bare "database is locked"), and the cell is not stored as failed."""
    cell = tiny_cell(steps=4)
    with Store(tmp_path / "s") as store, Leases(store.db_path) as leases:
        assert leases.acquire(cell.cell_id, my_owner())[0] == "taken"
        code = ("import os, signal, sqlite3, sys; db = sqlite3.connect(sys.argv[1], "
                "isolation_level=None); db.execute('BEGIN IMMEDIATE'); "
                "db.execute('UPDATE leases SET heartbeat=heartbeat'); print(1, flush=True); "
                "os.kill(os.getpid(), signal.SIGSTOP)")
        holder = subprocess.Popen([sys.executable, "-c", code, str(store.db_path)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline() == "1\n"
            monkeypatch.setattr(locks, "BUSY_TIMEOUT_S", 0.5)
            with Leases(store.db_path) as other, pytest.raises(StoreBusy) as taken:
                other.acquire("0" * 16, "other:2:2:b")
            with pytest.raises(StoreBusy) as written:
                checkpoint.save_atomic({"step": torch.tensor(1)},
                                       store.cell_dir(cell.cell_id) / "checkpoint.pt")
            # the holder's own heartbeat cannot refresh either: its lost lease says why
            monkeypatch.setenv("GANBENCH_LEASE_TIMEOUT", "1")
            with Heartbeat(store.db_path, cell.cell_id, my_owner(), every=0.1) as beat:
                assert beat.fence.lost.wait(30)
            assert f"the store stayed locked: its write lock is held by process {holder.pid}" \
                in beat.fence.why
        finally:
            os.kill(holder.pid, signal.SIGCONT)
            holder.wait(timeout=30)
        for exc in (taken.value, written.value):
            assert f"held by process {holder.pid}, which is stopped" in str(exc)
            assert f"kill -CONT {holder.pid}" in str(exc) and "\n" not in str(exc)
        assert "take the lease of cell 0000000000000000" in str(taken.value)
        assert "record checkpoint.pt of cell" in str(written.value)
        assert not (store.cell_dir(cell.cell_id) / "checkpoint.pt").exists()
        # resumed, the store is writable again
        assert leases.acquire("0" * 16, "other:2:2:b")[0] == "taken"
        # a busy store while training is not the cell's fault: nothing is stored as failed
        def busy_store(*args):
            raise StoreBusy("store busy")

        monkeypatch.setattr(integrity, "record_files", busy_store)
        other_cell = tiny_cell(steps=4, checkpoint_every=2, seed=1)
        with pytest.raises(StoreBusy):
            run_cell(other_cell, store, progress=False, curve_every=0)
        assert not store.has(other_cell.cell_id)


def test_sigstopped_holder_taken_over_writes_nothing_after_sigcont(tmp_path):
    """A holder paused (SIGSTOP, Ctrl-Z) past the lease timeout loses its lease to a second run;
    woken (SIGCONT) it stops at once with one line, writes no checkpoint and no record, and the
    cell's final checkpoint is the taker's."""
    store = tmp_path / "s"
    env = {**os.environ, "GANBENCH_LEASE_TIMEOUT": "2"}
    argv = cli_cmd(*TRAIN, "--steps", "3000", "--store", str(store))
    paused = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 120
        cells = store / "cells"
        while not any(cells.glob("*/checkpoint.pt")):  # it is training
            assert paused.poll() is None and time.monotonic() < deadline, paused.communicate()
            time.sleep(0.05)
        stop_outside_a_write(paused.pid, store / "results.sqlite")
        leases = Leases(store / "results.sqlite")
        while time.time() - leases.all()[0].heartbeat <= 2.5:  # past the timeout
            time.sleep(0.1)
        leases.close()
        taker = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
        assert taker.returncode == 0, taker.stderr
        (folder,) = cells.iterdir()
        ckpt = folder / "checkpoint.pt"
        final, listing = ckpt.read_bytes(), sorted(p.name for p in folder.iterdir())
        with Store(store) as s:
            (record,) = s.records()
        os.kill(paused.pid, signal.SIGCONT)
        out, err = paused.communicate(timeout=120)
    finally:
        if paused.poll() is None:
            os.kill(paused.pid, signal.SIGCONT)
            paused.kill()
    assert paused.returncode == 1, err
    assert "lost the lease of cell" in one_line(err) and "stopped without writing" in err
    assert record.status == "done" and record.step == 3000
    assert ckpt.read_bytes() == final  # the taker's final checkpoint, untouched
    assert sorted(p.name for p in folder.iterdir()) == listing  # no temporary, nothing new
    assert int(checkpoint.load(ckpt)["step"]) == 3000
    with Store(store) as s:
        (again,) = s.records()
        assert again.created_at == record.created_at and not s._query("SELECT * FROM retired")
        (row,) = s._query("SELECT sha256 FROM files WHERE name='checkpoint.pt'")
    assert row[0] == sha256_file(ckpt)


# -- digests ----------------------------------------------------------------------------------------
def _flip(path: Path, n: int = 64) -> None:
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid:mid + n] = bytes(b ^ 0xFF for b in data[mid:mid + n])
    path.write_bytes(bytes(data))


def test_a_flipped_bytes_checkpoint_is_not_trusted_the_cell_falls_back(tmp_path, capsys):
    cell = tiny_cell(steps=8, checkpoint_every=2)
    with Store(tmp_path / "s") as store:
        assert run_cell(cell, store, progress=False, stop_after=6, curve_every=0) is None
        ckpt = store.cell_dir(cell.cell_id) / "checkpoint.pt"
        _flip(ckpt)
        capsys.readouterr()
        record = run_cell(cell, store, progress=False, curve_every=0)
    err = capsys.readouterr().err
    assert "does not match its recorded sha256" in one_line(err)
    assert "falls back to its previous checkpoint checkpoint.prev.pt" in err
    assert record.status == "done" and record.history[0]["event"] == "fallback"
    with Store(tmp_path / "fresh") as store:  # the fallback changes nothing in the result
        fresh = run_cell(cell, store, progress=False, curve_every=0)
    assert fresh.metrics == record.metrics and fresh.curves == record.curves


def test_a_flipped_final_checkpoint_is_refused_by_eval_in_one_line(tmp_path, capsys):
    cell = tiny_cell(steps=3)
    with Store(tmp_path / "s") as store:
        run_cell(cell, store, progress=False, curve_every=0)
        ckpt = store.cell_dir(cell.cell_id) / "checkpoint.pt"
    _flip(ckpt)
    code, _, err = cli(capsys, "eval", "--store", tmp_path / "s", "--cell", cell.cell_id,
                       "--metrics", "modes")
    assert code == 2 and "does not match its recorded sha256" in one_line(err)


def test_a_killed_writes_temporary_is_removed_on_the_next_run(tmp_path, capsys):
    cell = tiny_cell(steps=4, checkpoint_every=2)
    with Store(tmp_path / "s") as store:
        assert run_cell(cell, store, progress=False, stop_after=2, curve_every=0) is None
        folder = store.cell_dir(cell.cell_id)
        (folder / "checkpoint.pt.k1ll3d.tmp").write_bytes(b"x" * 1000)
        capsys.readouterr()
        assert run_cell(cell, store, progress=False, curve_every=0).status == "done"
    assert "checkpoint.pt.k1ll3d.tmp, left by a write that was killed" in capsys.readouterr().err
    assert not list(folder.glob("*.tmp"))


# -- damaged database, check and repair -------------------------------------------------------------
SMALL = ["train", "--dataset", "ring8", "--steps", "6", "--batch-size", "16", "--width", "8",
         "--checkpoint-every", "3", "--curve-every", "0", "--metrics", "modes"]


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("small") / "s"
    for seed in range(3):
        assert main(SMALL + ["--seed", str(seed), "--store", str(root)]) == 0
    return root


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_check_of_a_sound_store_exits_0_and_bad_input_exits_2(capsys, small_store, tmp_path):
    code, out, err = cli(capsys, "check", "--store", small_store)
    assert code == 0 and "is sound (3 record(s) read, 0 invalid)" in out and not err
    code, _, err = cli(capsys, "check", "--store", tmp_path / "nothing")
    assert code == 2 and "no store at" in one_line(err)


def test_every_damaged_page_is_one_line_then_check_finds_it_and_repair_salvages(
        capsys, small_store, tmp_path):
    """4 KB of random bytes over each page of a small store in turn: every command says in one
    line which file is damaged and to run the check (never a traceback, never a silent exit 0);
    check exits 1; --repair rebuilds the database from every readable row (the damaged file is
    kept) and the store is sound again."""
    import random

    db_file = small_store / "results.sqlite"
    pages = db_file.stat().st_size // 4096
    assert pages >= 8
    kept = {}
    for page in range(pages):
        root = _copy(small_store, tmp_path / f"p{page}")
        for f in root.glob("results.sqlite-*"):
            f.unlink()
        data = bytearray((root / "results.sqlite").read_bytes())
        rnd = random.Random(page)
        data[page * 4096:(page + 1) * 4096] = bytes(rnd.randrange(256) for _ in range(4096))
        (root / "results.sqlite").write_bytes(bytes(data))
        for argv in (["show"], ["status"], SMALL[:-2] + ["--seed", "0"]):
            code, out, err = cli(capsys, *argv, "--store", root)
            assert code == 2, (page, argv, out)
            assert f"store database {root / 'results.sqlite'} is damaged" in one_line(err)
            assert "ganbench check" in err
        code, out, err = cli(capsys, "check", "--store", root)
        assert code == 1 and f"database {root / 'results.sqlite'}" in out, page
        code, out, err = cli(capsys, "check", "--store", root, "--repair")
        assert code == 0 and "rebuilt" in out and "Traceback" not in out + err, (page, out, err)
        assert list(root.glob("results.sqlite.damaged-*"))
        assert cli(capsys, "check", "--store", root)[0] == 0
        code, out, _ = cli(capsys, "show", "--store", root)
        assert code == 0
        kept[page] = int(out.split(" record(s)")[0])
    # every record is salvaged unless the damaged page held (part of) that record's own bytes
    assert sum(n == 3 for n in kept.values()) >= pages - 3, kept


def test_repair_salvages_records_sets_invalid_ones_aside_and_retires_lost_checkpoints(
        capsys, small_store, tmp_path):
    root = _copy(small_store, tmp_path / "s")
    with Store(root) as s:
        ids = [r.cell_id for r in s.records()]
        good = s.get(ids[0]).to_json()
    db = sqlite3.connect(root / "results.sqlite")
    with db:  # an id that escapes, a record whose id is not its config's hash
        db.execute("INSERT INTO cells VALUES ('../../x','v','l','ring8',0,'done',?,1.0)",
                   (good.replace(ids[0], "../../x"),))
    db.close()
    (root / "cells" / ids[1] / "checkpoint.pt").unlink()
    _flip(root / "cells" / ids[2] / "checkpoint.pt")
    (root / "cells" / ids[0] / "checkpoint.pt.zz.tmp").write_bytes(b"x")
    with sqlite3.connect(root / "results.sqlite") as db:
        db.execute("INSERT INTO leases VALUES ('0123456789abcdef','nohost:1:1:x',0,1)")
    code, out, err = cli(capsys, "check", "--store", root)
    assert code == 1
    for needle in ("'../../x' is not 16 hex digits", f"cell {ids[1]}: final checkpoint",
                   "is missing", "does not match its recorded sha256", "checkpoint.pt.zz.tmp",
                   "stale lease on cell 0123456789abcdef"):
        assert needle in out, needle
    code, out, err = cli(capsys, "check", "--store", root, "--repair")
    assert code == 0, out + err
    assert cli(capsys, "check", "--store", root)[0] == 0
    with Store(root) as s:
        assert [r.cell_id for r in s.records()] == [ids[0]]  # the other two: to be retrained
        assert len(s._query("SELECT * FROM retired")) == 2
        assert len(s._query("SELECT * FROM set_aside")) == 1
    assert not list((root / "cells" / ids[0]).glob("*.tmp"))
    # a rerun retrains the retired cells, their old records in the new ones' history
    assert main(SMALL + ["--seed", "1", "--store", str(root)]) == 0
    with Store(root) as s:
        redone = s.get(ids[1])
    assert redone.history[-1]["event"].startswith("repair: final checkpoint")


def test_an_invalid_record_named_like_a_read_error_is_set_aside_not_a_rebuild(
        capsys, small_store, tmp_path):
    """The repair rebuilds the database only when SQLite's check fails or a row could not be
    read, not when a problem's text happens to contain those words (it used to match them)."""
    root = _copy(small_store, tmp_path / "s")
    with Store(root) as s:
        good = next(iter(s.records())).to_json()
    with sqlite3.connect(root / "results.sqlite") as db:
        db.execute("INSERT INTO cells VALUES ('unreadable scan stopped','v','l','ring8',0,'done',"
                   "?,1.0)", (good,))
    code, out, err = cli(capsys, "check", "--store", root, "--repair")
    assert code == 0, out + err
    assert "set aside the invalid record" in out and "rebuilt" not in out


# -- untrusted store content ------------------------------------------------------------------------
def _plant(root: Path, row_id: str, text: str) -> None:
    with sqlite3.connect(root / "results.sqlite") as db:
        db.execute("INSERT INTO cells VALUES (?,?,?,?,?,?,?,?)",
                   (row_id, "v", "l", "ring8", 0, "done", text, 2e9))


def test_a_dot_dot_cell_id_cannot_make_report_read_or_write_outside(capsys, small_store, tmp_path):
    import json

    root = _copy(small_store, tmp_path / "a" / "b" / "s")
    with Store(root) as s:
        record = json.loads(next(s.records()).to_json())
    evil = "../../../x"
    _plant(root, evil, json.dumps({**record, "cell_id": evil}))
    outside = (root / "cells" / evil).resolve()
    outside.mkdir(parents=True)
    (outside / "samples.npz").write_bytes(b"planted")
    before = sorted(p for p in tmp_path.rglob("*"))
    for argv in (["report", "--out", root / "r"], ["show"], ["status"]):
        code, out, err = cli(capsys, *argv, "--store", root)
        assert code == 2 and "'../../../x'" in one_line(err) and "not 16 hex digits" in err
    after = sorted(p for p in tmp_path.rglob("*"))
    assert [p for p in after if p not in before] == []  # nothing written anywhere


def test_terminal_escapes_from_a_store_are_printed_escaped(capsys, small_store, tmp_path):
    root = _copy(small_store, tmp_path / "s")
    with sqlite3.connect(root / "results.sqlite") as db:
        (cid, text), = db.execute("SELECT cell_id, record FROM cells LIMIT 1").fetchall()
        import json

        rec = json.loads(text)
        rec["label"] = "evil\x1b[2J\x1b]0;owned\x07"
        rec["reason"] = "line1\rline2"
        rec["status"] = "failed"
        db.execute("UPDATE cells SET record=?, status='failed' WHERE cell_id=?",
                   (json.dumps(rec), cid))
        db.execute("INSERT INTO leases VALUES ('0123456789abcdef', ?, ?, 1)",
                   (f"{os.uname().nodename}:{os.getpid()}:0:\x1b[31mred", time.time()))
    for argv in (["show"], ["status"]):
        code, out, err = cli(capsys, *argv, "--store", root)
        assert code == 0 and "\x1b" not in out + err and "\r" not in out + err and "\x07" not in out
        assert "\\x1b[2J" in out
    assert "\\x1b[31mred" in out and "line1\\rline2" in out  # status: the owner and the reason


@pytest.mark.parametrize("bad", ["truncated", "garbage", "object-array", "flipped"])
def test_a_bad_sample_file_is_one_warning_and_the_report_finishes(capsys, small_store, tmp_path,
                                                                  bad):
    import numpy as np

    root = _copy(small_store, tmp_path / "s")
    with Store(root) as s:
        ids = [r.cell_id for r in s.records()]
    f = root / "cells" / ids[0] / "samples.npz"
    if bad != "flipped":  # a store written before digests: the file itself is checked
        with sqlite3.connect(root / "results.sqlite") as db:
            db.execute("DELETE FROM files")
    if bad == "truncated":
        f.write_bytes(f.read_bytes()[:200])
    elif bad == "garbage":
        f.write_bytes(os.urandom(5000))
    elif bad == "object-array":
        f.unlink()
        np.savez(f.with_suffix(""), points=np.array([object(), 1], dtype=object))
    else:
        _flip(f, 16)
    code, out, err = cli(capsys, "report", "--store", root, "--out", tmp_path / "r")
    assert code == 0, err
    warning = [line for line in err.splitlines() if str(f) in line]
    assert len(warning) == 1 and "its samples figure is skipped" in warning[0], err
    assert "Traceback" not in err
    pngs = sorted(p.parent.name for p in (tmp_path / "r" / "samples").rglob("*.png")) \
        if (tmp_path / "r" / "samples").exists() else []
    assert not (tmp_path / "r" / "samples" / ids[0]).exists() or ids[0] not in pngs
    # one sheet per variant and dataset: the others' panels, the bad file's seed left out
    assert len(list((tmp_path / "r" / "samples").glob("*.png"))) == 1
    index = (tmp_path / "r" / "index.md").read_text()
    (line,) = [x for x in index.splitlines() if x.startswith("- [samples/")]
    assert line.count(",") == 2  # "...: ring8 baseline, seeds A, B": two of the three seeds


# -- bounds -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("option, value, key", [
    ("--steps", 10**12, "steps"), ("--width", 10**9, "width"), ("--depth", 10**8, "depth"),
    ("--z-dim", 10**6, "z_dim"), ("--batch-size", 10**8, "batch_size"),
    ("--resolution", 10**6, "resolution")])
def test_each_bound_is_refused_in_one_line_naming_key_value_limit(capsys, tmp_path, option,
                                                                  value, key):
    from bench.core.config import LIMITS

    dataset = "digits" if key == "resolution" else "ring8"
    code, _, err = cli(capsys, "train", "--dataset", dataset, option, value, "--store",
                       tmp_path / "s")
    assert code == 2 and f"{key} = {value} is above the limit of {LIMITS[key]}" in one_line(err)
    assert f"GANBENCH_MAX_{key.upper()}" in err and not (tmp_path / "s").exists()


def test_a_bound_can_be_raised_by_its_environment_variable(monkeypatch):
    from bench.core.config import ConfigError, TrainConfig

    with pytest.raises(ConfigError, match="above the limit"):
        TrainConfig(steps=20_000_000)
    monkeypatch.setenv("GANBENCH_MAX_STEPS", "50000000")
    assert TrainConfig(steps=20_000_000).steps == 20_000_000
    monkeypatch.setenv("GANBENCH_MAX_STEPS", "lots")
    with pytest.raises(ConfigError, match="GANBENCH_MAX_STEPS must be an integer"):
        TrainConfig(steps=5)


GRID = """description = "big"
design = "add-one"
tricks = ["label_smoothing"]
seeds = {seeds}
[[data]]
name = "ring8"
steps = 10
batch_size = {batch}
"""


def test_the_size_bound_counts_a_tables_own_params_over_the_grids(tmp_path, monkeypatch):
    """[params] sweeps 5 values; the ring8 table fixes one. 2 variants x 5 seeds = 10 cells,
    under a limit of 12; counting [params]' 5 values would claim at least 30 and refuse it."""
    from bench.schedule.grid import load_grid

    path = tmp_path / "fixed.toml"
    path.write_text('design = "add-one"\ntricks = ["label_smoothing"]\nseeds = [0, 1, 2, 3, 4]\n'
                    '[params]\n"label_smoothing.real" = [0.7, 0.75, 0.8, 0.85, 0.9]\n'
                    '[[data]]\nname = "ring8"\nsteps = 10\n'
                    'params = { "label_smoothing.real" = 0.9 }\n')
    monkeypatch.setenv("GANBENCH_MAX_CELLS", "12")
    assert len(load_grid(str(path)).cells) == 10


@pytest.mark.parametrize("seeds, batch, message", [
    (list(range(100_000)), 16, "the number of seeds = 100000 is above the limit of 1000"),
    (list(range(100)), list(range(2, 1000)), "asks for at least 199600 cells in all, above "
                                             "the limit of 20000 per grid")])
def test_a_huge_grid_dry_run_is_refused_in_seconds(capsys, tmp_path, seeds, batch, message):
    path = tmp_path / "big.toml"
    path.write_text(GRID.format(seeds=seeds, batch=batch))
    started = time.monotonic()
    code, _, err = cli(capsys, "run", "--grid", path, "--store", tmp_path / "s", "--dry-run")
    assert code == 2 and message in one_line(err)
    assert time.monotonic() - started < 15 and not (tmp_path / "s").exists()


# -- exit codes and messages ------------------------------------------------------------------------
def test_train_tricks_with_no_names_and_an_inapplicable_metric_are_bad_input(capsys, tmp_path):
    base = ["train", "--dataset", "ring8", "--steps", "3", "--store", tmp_path / "s"]
    code, _, err = cli(capsys, *base, "--tricks", ",,")
    assert code == 2 and "names no trick" in one_line(err)
    code, _, err = cli(capsys, *base, "--metrics", "fid")
    assert code == 2 and "--metrics fid does not apply to ring8" in one_line(err)
    assert not (tmp_path / "s").exists()


def test_train_exits_1_when_its_cell_is_stored_failed(capsys, tmp_path, monkeypatch):
    from bench.train import Trainer

    def broken(self):
        raise RuntimeError("simulated fault")

    monkeypatch.setattr(Trainer, "train_step", broken)
    code, out, err = cli(capsys, *SMALL, "--store", tmp_path / "s")
    assert code == 1 and "failed" in out
    with Store(tmp_path / "s") as s:
        assert next(s.records()).status == "failed"


def test_a_full_disk_is_one_line_that_says_so_and_stores_nothing(capsys, tmp_path, monkeypatch):
    import errno

    real = os.fdopen

    def full(fd, *a, **kw):
        f = real(fd, *a, **kw)

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, data):
                raise OSError(errno.ENOSPC, "No space left on device")

        return Full()

    monkeypatch.setattr(os, "fdopen", full)
    code, out, err = cli(capsys, *SMALL, "--store", tmp_path / "s")
    assert code == 2 and one_line(err).startswith("ganbench: error: disk full: cannot write "
                                                  "checkpoint")
    assert str(tmp_path / "s" / "cells") in err
    with Store(tmp_path / "s") as s:
        assert not list(s.records())
    assert not list((tmp_path / "s").rglob("*.tmp"))


# -- a cell id determines its result ----------------------------------------------------------------
IMAGE = ["train", "--dataset", "digits", "--steps", "4", "--batch-size", "16", "--width", "8",
         "--checkpoint-every", "2", "--curve-every", "2", "--n", "64", "--json"]


def test_the_thread_count_is_part_of_the_cell_id(capsys, tmp_path, monkeypatch):
    from bench.cli.cmd_train import build_cell, register  # noqa: F401
    from bench.cli import make_parser

    args = make_parser().parse_args(IMAGE[:-1] + ["--store", str(tmp_path)])
    one = build_cell(args)
    assert "threads" not in one.to_dict()["train"]  # ids of 1-thread cells are unchanged
    monkeypatch.setenv("GANBENCH_CELL_THREADS", "2")
    two = build_cell(args)
    assert two.train.threads == 2 and two.cell_id != one.cell_id
    from bench.schedule.grid import load_grid

    assert all(c.train.threads == 2 for c in load_grid("smoke").cells)
    monkeypatch.setenv("GANBENCH_CELL_THREADS", "many")
    code, _, err = cli(capsys, *IMAGE, "--store", tmp_path / "s")
    assert code == 2 and "GANBENCH_CELL_THREADS must be an integer" in one_line(err)


def test_a_stored_image_cell_rerun_in_a_fresh_process_is_bit_identical(tmp_path):
    import json

    store = str(tmp_path / "s")
    first = subprocess.run(cli_cmd(*IMAGE, "--store", store), capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr
    again = subprocess.run(cli_cmd(*IMAGE, "--store", store, "--force"), capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    a, b = json.loads(first.stdout), json.loads(again.stdout)
    assert a["cell_id"] == b["cell_id"] and b["history"][-1]["event"] == "retrain"
    assert a["metrics"] == b["metrics"] and a["curves"] == b["curves"]  # bit for bit
    assert a["runtime"]["numerics"] == b["runtime"]["numerics"]
    assert "differs from its stored record" not in again.stderr


def test_a_rerun_that_differs_from_the_stored_record_says_why(capsys, tmp_path):
    import json

    store = tmp_path / "s"
    code, out, _ = cli(capsys, *IMAGE, "--store", store)
    rec = json.loads(out)
    rec["metrics"]["fid"] += 0.02  # as if computed elsewhere
    rec["runtime"]["numerics"] = {"cpu_capability": "AVX2", "cpu": "other",
                                  "fingerprint": "0000000000000000"}
    with sqlite3.connect(store / "results.sqlite") as db:
        db.execute("UPDATE cells SET record=?", (json.dumps(rec),))
    code, out, err = cli(capsys, *IMAGE, "--store", store, "--force")
    assert code == 0
    note = [line for line in err.splitlines() if "differs from its stored record" in line]
    assert len(note) == 1 and "fid" in note[0] and "fingerprint 0000000000000000" in note[0]


def test_the_lock_holder_is_matched_by_device_and_inode():
    """/proc/locks names a file by major:minor:inode (hex device numbers): a lock on another
    device's file of the same inode is not the store's; with no exact match, a unique
    inode-only match stands (an overlay file system reports the lower device there)."""
    line = "{n}: POSIX  ADVISORY  WRITE {pid} {dev}:{ino} 120 120"
    ours = line.format(n=1, pid=111, dev="fe:00", ino=42)
    other_fs = line.format(n=2, pid=222, dev="08:01", ino=42)
    read_lock = "3: POSIX  ADVISORY  READ 333 fe:00:42 120 120"
    other_byte = "4: POSIX  ADVISORY  WRITE 444 fe:00:42 128 128"
    assert locks.holder_in([other_fs, ours, read_lock, other_byte], 0xfe, 0, 42, me=1) == 111
    assert locks.holder_in([other_fs], 0xfe, 0, 42, me=1) == 222   # overlay: inode only
    assert locks.holder_in([other_fs, line.format(n=5, pid=555, dev="08:02", ino=42)],
                           0xfe, 0, 42, me=1) is None               # ambiguous: nobody named
    assert locks.holder_in([ours], 0xfe, 0, 42, me=111) is None     # this process itself
    assert locks.holder_in([ours], 0xfe, 0, 43, me=1) is None
    assert locks.holder_in(["garbage", "1: FLOCK ADVISORY WRITE 9 fe:00:42 0 EOF"],
                           0xfe, 0, 42, me=1) is None
