"""A store is untrusted input: planted pickles never run, records cannot point outside the
store, invalid records and databases fail in one line naming the file, read-only stores can be
read, failed writes leave no temporary file, and re-scoring / retraining lose nothing."""
import json
import pickle
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.core.record import Record
from bench.store import Store, StoreError
import bench.store.db as store_mod
from bench.train import checkpoint
from bench.train.checkpoint import CheckpointError
from tests.tiny import tiny_cell, tiny_trainer

TRAIN = ["train", "--dataset", "ring8", "--steps", "3", "--batch-size", "16", "--width", "8",
         "--checkpoint-every", "0", "--curve-every", "0", "--json"]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("ganbench: error: "), err
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store with one trained ring8 cell (final checkpoint included); copy it before use."""
    root = tmp_path_factory.mktemp("trained") / "store"
    assert main(TRAIN + ["--store", str(root)]) == 0
    with Store(root) as store:
        (record,) = store.records()
    return root, record.cell_id


@pytest.fixture
def store_copy(tmp_path, trained):
    root, cell_id = trained
    shutil.copytree(root, tmp_path / "store")
    return tmp_path / "store", cell_id


class RunsCode:
    """Unpickling this calls exec: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def plant_pickle(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 2, "G": RunsCode(marker)}, path)


def test_planted_checkpoint_does_not_run_under_eval(capsys, store_copy, tmp_path):
    root, cell_id = store_copy
    marker = tmp_path / "marker"
    ckpt = root / "cells" / cell_id / "checkpoint.pt"
    plant_pickle(ckpt, marker)
    code, out, err = cli(capsys, "eval", "--store", root, "--cell", cell_id[:6])
    assert code == 2 and str(ckpt) in one_error_line(err)
    assert not marker.exists()


def test_planted_checkpoint_does_not_run_on_resume(tmp_path):
    marker = tmp_path / "marker"
    trainer = tiny_trainer(workdir=tmp_path)
    plant_pickle(trainer.checkpoint_path(), marker)
    with pytest.raises(CheckpointError) as exc:
        trainer.try_resume()
    assert str(trainer.checkpoint_path()) in str(exc.value) and "\n" not in str(exc.value)
    assert not marker.exists()


def test_planted_pickle_under_plain_pickle_protocol_is_refused(tmp_path):
    """Not only torch.save's zip format: a legacy raw pickle is refused too."""
    marker, path = tmp_path / "marker", tmp_path / "checkpoint.pt"
    path.write_bytes(pickle.dumps({"G": RunsCode(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        checkpoint.load(path)
    assert not marker.exists()


def _plant_row(root: Path, row_id: str, record_text: str) -> None:
    db = sqlite3.connect(root / "results.sqlite")
    with db:
        db.execute("INSERT INTO cells VALUES (?,?,?,?,?,?,?,?)",
                   (row_id, "v", "baseline", "ring8", 0, "done", record_text, 0.0))
    db.close()


@pytest.mark.parametrize("row_id, record_id", [("../../x", "../../x"),
                                               ("0123456789abcdef", "0123456789abcdef")])
def test_a_record_cannot_point_outside_the_store(capsys, store_copy, tmp_path, row_id, record_id):
    """The cell folder (and checkpoint) follow from the id the record's config hashes to: a
    record whose id was edited, e.g. to '../../x', is refused before any file is opened."""
    root, cell_id = store_copy
    record = json.loads(Store(root).get(cell_id).to_json())
    outside = tmp_path / "x"
    outside.mkdir()
    plant_pickle(outside / "checkpoint.pt", tmp_path / "marker")
    _plant_row(root, row_id, json.dumps({**record, "cell_id": record_id, "created_at": -1}))
    code, out, err = cli(capsys, "eval", "--store", root, "--metrics", "modes")
    line = one_error_line(err)
    # a non-hex id is refused as soon as its row is read; a hex one when its config is checked
    assert code == 2 and ("not 16 hex digits" in line if row_id == "../../x"
                          else "does not match its config" in line)
    assert not (tmp_path / "marker").exists()
    with Store(root) as store:
        with pytest.raises(StoreError, match="not 16 hex digits"):
            store.cell_dir("../../x")


def test_a_record_whose_config_is_not_a_cell_is_refused_in_one_line(capsys, store_copy):
    root, cell_id = store_copy
    record = json.loads(Store(root).get(cell_id).to_json())
    record["config"]["train"]["steps"] = "many"
    _plant_row(root, "00000000000000cc", json.dumps({**record, "cell_id": "00000000000000cc"}))
    code, _, err = cli(capsys, "eval", "--store", root, "--cell", "00000000000000cc")
    assert code == 2 and "invalid record for cell '00000000000000cc'" in one_error_line(err)
    assert "steps must be an integer >= 1, got 'many'" in err


def test_row_and_record_ids_must_agree(store_copy):
    root, cell_id = store_copy
    record = json.loads(Store(root).get(cell_id).to_json())
    _plant_row(root, "fedcba9876543210", json.dumps(record))
    with Store(root) as store, pytest.raises(StoreError, match="holds a record of cell"):
        list(store.records())


def test_invalid_record_json_is_one_line_naming_the_file(capsys, store_copy):
    root, _ = store_copy
    _plant_row(root, "00000000000000aa", "{not json")
    for argv in (["show", "--store", root], ["eval", "--store", root, "--cell", "00000000"],
                 ["status", "--store", root]):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and str(root / "results.sqlite") in one_error_line(err)
        assert "00000000000000aa" in err


def test_record_of_the_wrong_shape_is_one_line(capsys, store_copy):
    root, _ = store_copy
    _plant_row(root, "00000000000000bb", json.dumps({"cell_id": "00000000000000bb"}))
    code, _, err = cli(capsys, "show", "--store", root)
    assert code == 2 and "invalid record for cell '00000000000000bb'" in one_error_line(err)


def test_a_file_that_is_not_a_database_is_one_line(capsys, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    (root / "results.sqlite").write_bytes(b"this is not sqlite" * 100)
    for command in ("status", "show", "eval"):
        code, _, err = cli(capsys, command, "--store", root)
        assert code == 2 and str(root / "results.sqlite") in one_error_line(err)


def test_read_only_store_can_be_read_and_refuses_writes(capsys, store_copy, monkeypatch):
    """We run as whoever we are (often root in CI, where file modes do not bind), so the store's
    own writability check is patched to say 'read-only'; the sqlite connection it then opens
    (mode=ro) really refuses writes."""
    root, cell_id = store_copy
    before = (root / "results.sqlite").read_bytes()
    monkeypatch.setattr(store_mod, "_writable", lambda path: False)
    code, out, _ = cli(capsys, "status", "--store", root, "--json")
    assert code == 0 and json.loads(out)["counts"] == {"done": 1}
    code, out, _ = cli(capsys, "show", "--store", root, "--cell", cell_id[:5])
    assert code == 0 and out.splitlines()[2].startswith(cell_id)  # after the two header lines
    code, _, err = cli(capsys, "eval", "--store", root)
    assert code == 2 and "read-only" in one_error_line(err)
    with Store(root, create=False) as store:
        assert store.read_only
        with pytest.raises(StoreError, match="read-only"):
            store.put(store.get(cell_id), replace=True)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store._db.execute("DELETE FROM cells")
    assert (root / "results.sqlite").read_bytes() == before


def test_cell_prefix_is_not_a_sql_pattern(store_copy):
    root, cell_id = store_copy
    with Store(root) as store:
        assert store.resolve_id(cell_id[:3]) == cell_id
        assert store.resolve_id(cell_id[:4].upper()) == cell_id
        for pattern in ("%", "_", cell_id[:2] + "%", "'; DROP TABLE cells; --"):
            with pytest.raises(StoreError, match="--cell expects"):
                store.resolve_id(pattern)
        assert store.has(cell_id)


def test_failed_checkpoint_write_leaves_no_temp_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.pt"
    checkpoint.save_atomic({"step": torch.tensor(1)}, path)
    before = path.read_bytes()

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(CheckpointError) as exc:
        checkpoint.save_atomic({"step": torch.tensor(2)}, path)
    # a full disk is one line that says so and where
    assert str(path) in str(exc.value) and str(exc.value).startswith("disk full: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]
    assert path.read_bytes() == before


def test_unwritable_cell_folder_is_one_line(tmp_path):
    blocker = tmp_path / "cells"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(CheckpointError, match="cannot write checkpoint"):
        checkpoint.save_atomic({"x": torch.tensor(1)}, blocker / "abc" / "checkpoint.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["cells"]


def test_truncated_checkpoint_is_one_line_naming_the_file(tmp_path):
    trainer = tiny_trainer(workdir=tmp_path)
    trainer.train()
    path = trainer.checkpoint_path()
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError) as exc:
        tiny_trainer(workdir=tmp_path).try_resume()
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_rescore_merges_metrics_and_keeps_the_old_ones_in_history(capsys, store_copy):
    root, cell_id = store_copy
    first = Store(root).get(cell_id)
    assert {"modes", "high_quality"} <= set(first.metrics)
    # pretend an earlier scoring also produced a metric this re-scoring does not compute
    with Store(root) as store:
        store.put(Record(**{**first.__dict__, "metrics": {**first.metrics, "extra": 1.5}}),
                  replace=True)
    code, out, _ = cli(capsys, "eval", "--store", root, "--cell", cell_id, "--metrics", "modes",
                       "--eval-seed", "5", "--json")
    again = json.loads(out)
    assert code == 0
    assert again["metrics"]["extra"] == 1.5  # merged, not blanked
    assert set(first.metrics) <= set(again["metrics"])
    assert again["protocol"]["seed"] == 5
    (event,) = again["history"]
    assert event["event"] == "rescore" and event["metrics"] == {**first.metrics, "extra": 1.5}
    assert event["protocol"] == first.protocol
    code, out, _ = cli(capsys, "eval", "--store", root, "--cell", cell_id, "--json")
    assert [e["event"] for e in json.loads(out)["history"]] == ["rescore", "rescore"]


def test_train_says_when_it_returns_a_stored_record(capsys, store_copy):
    root, cell_id = store_copy
    code, out, err = cli(capsys, *TRAIN, "--store", root)
    assert code == 0 and json.loads(out)["cell_id"] == cell_id
    assert err.count("\n") == 1 and cell_id in err and "--force" in err
    assert "without training" in err


def test_train_force_retrains_as_a_new_attempt_and_keeps_the_old_record(capsys, store_copy):
    root, cell_id = store_copy
    old = Store(root).get(cell_id)
    code, out, err = cli(capsys, *TRAIN, "--store", root, "--force")
    new = json.loads(out)
    assert code == 0 and "--force" not in err
    assert new["cell_id"] == cell_id and new["created_at"] > old.created_at
    (event,) = new["history"]
    assert event["event"] == "retrain"
    assert event["created_at"] == old.created_at and event["metrics"] == old.metrics
    assert new["metrics"] == old.metrics  # same cell, same seed: the same numbers again
    with Store(root) as store:
        assert store.get(cell_id).history == new["history"]
        assert store._db.execute("SELECT COUNT(*) FROM retired").fetchone()[0] == 0


def test_a_retired_record_survives_a_crash_before_the_new_one_is_stored(tmp_path):
    """retire() and the next put() are separate transactions: in between, the old record waits
    in the `retired` table, and the next record of the cell picks it up."""
    cell = tiny_cell()
    rec = Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                 config=cell.to_dict(), status="done", metrics={"modes": 4.0})
    with Store(tmp_path) as store:
        store.put(rec)
        store.retire(cell.cell_id, "retrain")
    with Store(tmp_path) as store:  # "after the crash": a new process
        assert store.get(cell.cell_id) is None
        store.put(Record(**{**rec.__dict__, "metrics": {"modes": 6.0}, "history": []}))
        again = store.get(cell.cell_id)
    assert again.metrics == {"modes": 6.0}
    assert [(h["event"], h["metrics"]) for h in again.history] == [("retrain", {"modes": 4.0})]


def test_checkpoint_temp_files_are_unique_per_write(tmp_path, monkeypatch):
    """Two writers of one checkpoint (say, a worker taken over after a timeout) never share a
    temporary file: each write goes through its own, then atomically replaces the checkpoint."""
    import os

    temps = []
    real_replace = os.replace

    def spy(src, dst):
        temps.append(Path(src))
        assert Path(src).is_file() and Path(src).parent == Path(dst).parent
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    path = tmp_path / "checkpoint.pt"
    for step in range(3):
        checkpoint.save_atomic({"step": torch.tensor(step)}, path)
    temps = [t for t in temps if t.suffix == ".tmp"]  # not the kept previous checkpoint
    assert len(set(temps)) == 3 and not any(t.exists() for t in temps)
    assert int(checkpoint.load(path)["step"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]
    assert int(checkpoint.load(tmp_path / "checkpoint.prev.pt")["step"]) == 1


def test_samples_refuses_a_read_only_store_in_one_line(capsys, store_copy, monkeypatch):
    root, cell_id = store_copy
    samples = root / "cells" / cell_id / "samples.npz"
    before = samples.read_bytes()
    monkeypatch.setattr(store_mod, "_writable", lambda path: False)
    code, _, err = cli(capsys, "samples", "--store", root, "--cell", cell_id[:6])
    assert code == 2 and "is read-only here; samples writes to it" in one_error_line(err)
    assert samples.read_bytes() == before


def test_samples_write_error_is_one_line_and_keeps_the_old_file(capsys, store_copy, monkeypatch):
    """E.g. a cell folder on a read-only mount (EROFS): one line, no temporary left behind."""
    import numpy as np

    root, cell_id = store_copy
    folder = root / "cells" / cell_id
    before = (folder / "samples.npz").read_bytes()

    def read_only_fs(path, **arrays):
        Path(path).write_bytes(b"partial")
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(np, "savez", read_only_fs)
    code, _, err = cli(capsys, "samples", "--store", root, "--cell", cell_id)
    assert code == 2 and "cannot write the sample file" in one_error_line(err)
    assert "Read-only file system" in err
    assert (folder / "samples.npz").read_bytes() == before
    assert not list(folder.glob(".samples.npz.tmp*"))


def test_eval_skips_cells_no_requested_metric_applies_to(capsys, store_copy, monkeypatch):
    """fid on a 2-D cell changes nothing: no history entry for it, one line saying so; when it
    applies to no selected cell at all, exit 2 (nothing written)."""
    import bench.schedule.rescore

    root, cell_id = store_copy
    first = Store(root).get(cell_id)
    code, _, err = cli(capsys, "eval", "--store", root, "--cell", cell_id, "--metrics", "fid")
    assert code == 2 and "does not apply to 2d data" in one_error_line(err)
    assert Store(root).get(cell_id).history == first.history == []
    assert main(TRAIN + ["--store", str(root), "--seed", "1"]) == 0
    (other,) = [r.cell_id for r in Store(root).records() if r.cell_id != cell_id]
    capsys.readouterr()
    # stand-in for an image cell beside the 2-D one: fid applies to it, not to the other
    monkeypatch.setattr(bench.schedule.rescore, "kind_of",
                        lambda r: "image" if r.cell_id == other else "2d")
    code, out, err = cli(capsys, "eval", "--store", root, "--metrics", "fid", "--json")
    assert code == 0 and [json.loads(l)["cell_id"] for l in out.splitlines()] == [other]
    assert err == ("ganbench: skipped 1 cell(s): --metrics fid does not apply to 2d data "
                   "(scored on modes)\n")
    assert Store(root).get(cell_id).history == []
    assert [e["event"] for e in Store(root).get(other).history] == ["rescore"]
