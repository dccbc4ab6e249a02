"""End to end: a cell through the CLI, a grid that is interrupted and resumed (no cell trained
twice), a process pool, and re-scoring from checkpoints."""
import json
from collections import Counter

import pytest

from bench.cli import main
from bench.schedule.executor import run_cells
from bench.schedule.grid import load_grid
import bench.schedule.runner as runner
from bench.store import Store
from bench.train import Trainer

GRID = """
description = "tiny"
design = "add-one"
tricks = ["label_smoothing", "spectral_norm", "self_attention"]
seeds = [0, 1]

[[data]]
name = "ring8"
steps = 6
batch_size = 32
width = 16
checkpoint_every = 2
"""


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(GRID)
    return path


def test_train_prints_the_record_as_json_and_stores_it(capsys, tmp_path):
    store = tmp_path / "s"
    code = main(["train", "--dataset", "ring8", "--tricks", "label_smoothing", "--steps", "5",
                 "--batch-size", "32", "--store", str(store), "--json"])
    out = capsys.readouterr().out
    record = json.loads(out)
    assert code == 0 and record["status"] == "done" and record["step"] == 5
    assert set(record["metrics"]) == {"modes", "high_quality", "reverse_kl", "modes_strict"}
    assert record["config"]["tricks"] == [{"name": "label_smoothing",
                                           "params": {"fake": 0.1, "real": 0.9}}]
    assert record["protocol"] and {"train_s", "eval_s"} <= set(record["timings"])
    assert "d_adv" in record["curves"] and record["versions"]["torch"]
    # a rerun is skipped: the stored record comes back unchanged
    main(["train", "--dataset", "ring8", "--tricks", "label_smoothing", "--steps", "5",
          "--batch-size", "32", "--store", str(store), "--json"])
    assert json.loads(capsys.readouterr().out) == record
    main(["status", "--store", str(store), "--json"])
    assert json.loads(capsys.readouterr().out)["counts"] == {"done": 1}


def test_grid_cells_and_not_applicable_records(grid_file, tmp_path):
    grid = load_grid(str(grid_file))
    assert len(grid.cells) == 4 * 2
    records = list(run_cells(grid.cells, tmp_path / "s", progress=False))
    by_status = Counter(r.status for r in records)
    assert by_status == {"done": 6, "not-applicable": 2}
    na = next(r for r in records if r.status == "not-applicable")
    assert "self_attention does not apply to 2d data" in na.reason


def test_interrupted_grid_resumes_and_trains_no_cell_twice(grid_file, tmp_path, monkeypatch):
    cells = [c for c in load_grid(str(grid_file)).cells if "self_attention" not in c.label]
    trained = Counter()
    real_train = Trainer.train

    def counting_train(self, stop_after=None):
        trained[self.cell.cell_id] += 1
        if len(trained) == 3 and stop_after is None and self.step == 0:
            self.step = 0
            real_train(self, stop_after=3)  # killed mid-cell, checkpoint at step 2 on disk
            raise KeyboardInterrupt
        return real_train(self, stop_after)

    monkeypatch.setattr(Trainer, "train", counting_train)
    # the one-cell-per-process path (fused groups have their own kill-and-resume test in
    # tests/test_fused_scheduler.py; they do not go through Trainer.train)
    monkeypatch.setenv("GANBENCH_NO_FUSE", "1")
    with pytest.raises(KeyboardInterrupt):
        list(run_cells(cells, tmp_path / "s", progress=False))
    with Store(tmp_path / "s") as store:
        assert len(list(store.records())) == 2
    list(run_cells(cells, tmp_path / "s", progress=False))
    assert len(trained) == len(cells)
    twice = [cid for cid, n in trained.items() if n > 1]
    assert len(twice) == 1  # only the interrupted cell was started again ...
    with Store(tmp_path / "s") as store:  # ... and it resumed, ending like a straight run
        resumed = store.get(twice[0])
        assert resumed.status == "done" and resumed.step == 6
    fresh = list(run_cells([c for c in cells if c.cell_id == twice[0]], tmp_path / "fresh",
                           progress=False))[0]
    assert fresh.curves == resumed.curves and fresh.metrics == resumed.metrics


def test_process_pool_gives_the_same_records_as_in_process(grid_file, tmp_path):
    cells = [c for c in load_grid(str(grid_file)).cells
             if c.label in ("baseline", "spectral_norm")]
    serial = {r.cell_id: r for r in run_cells(cells, tmp_path / "a", progress=False)}
    pooled = {r.cell_id: r for r in run_cells(cells, tmp_path / "b", workers=2, progress=False)}
    assert serial.keys() == pooled.keys()
    for cid in serial:
        assert serial[cid].curves == pooled[cid].curves
        assert serial[cid].metrics == pooled[cid].metrics


def test_eval_rescores_from_the_checkpoint_and_keeps_old_scores(capsys, tmp_path):
    store = tmp_path / "s"
    main(["train", "--dataset", "ring8", "--steps", "4", "--batch-size", "32",
          "--store", str(store), "--json"])
    first = json.loads(capsys.readouterr().out)
    assert main(["eval", "--store", str(store), "--cell", first["cell_id"][:8],
                 "--eval-seed", "3", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert first["protocol"]["seed"] == 0 and again["protocol"]["seed"] == 3
    assert again["history"][-1]["event"] == "rescore"
    assert again["history"][-1]["metrics"] == first["metrics"]
    assert again["curves"] == first["curves"]


def test_runner_returns_a_stored_cell_without_training(tmp_path, monkeypatch):
    """run_cell on a stored cell returns it without building a trainer."""
    calls = []
    monkeypatch.setattr(runner, "Trainer", lambda *a, **k: calls.append(1))
    from tests.tiny import tiny_cell
    from bench.core.record import Record

    c = tiny_cell()
    with Store(tmp_path) as store:
        store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                         config=c.to_dict(), status="done"))
        assert runner.run_cell(c, store).status == "done"
    assert calls == []


def test_records_carry_metric_curves(capsys, tmp_path):
    main(["train", "--dataset", "digits", "--steps", "4", "--batch-size", "16", "--width", "8",
          "--curve-every", "2", "--n", "64", "--store", str(tmp_path / "s"), "--json"])
    record = json.loads(capsys.readouterr().out)
    assert [s for s, _ in record["curves"]["eval_fid"]] == [2]
    assert [s for s, _ in record["curves"]["eval_modes"]] == [2]
    assert record["timings"]["curve_s"] > 0


def test_data_root_reaches_the_trainer(capsys, tmp_path, monkeypatch):
    """`--data-root` must be where the cell's trainer loads from, not only the CLI's pre-check."""
    from bench.data import clear_cache
    from tests.test_data import FASHION_DIR_ENV, fake_mnist, write_idx

    empty = tmp_path / "no-debian"
    empty.mkdir()
    monkeypatch.setenv(FASHION_DIR_ENV, str(empty))
    monkeypatch.delenv("GANBENCH_DATA", raising=False)
    root = tmp_path / "my-data"
    write_idx(root / "FashionMNIST" / "raw", fake_mnist(3, n_train=40, n_test=16))
    clear_cache()
    try:
        code = main(["train", "--dataset", "fashion-mnist", "--resolution", "16", "--steps", "2",
                     "--batch-size", "8", "--width", "8", "--n", "16", "--curve-every", "0",
                     "--data-root", str(root), "--store", str(tmp_path / "s"), "--json"])
    finally:
        clear_cache()  # monkeypatch restores GANBENCH_DATA, which main() set
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["status"] == "done" and record["protocol"]["num_reference"] == 16
