"""A cell's result does not depend on how it was launched: `train`, in-process `run` and pool
workers pin the same torch thread count on the CPU, and the record says how many."""
import json

import torch

from bench.cli import main
from bench.store import Store

GRID = """
design = "baseline"
seeds = [0, 1]

[[data]]
name = "digits"
steps = 4
batch_size = 16
width = 8
"""


def test_train_run_and_pool_workers_give_bit_identical_image_metrics(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID)
    common = ["--curve-every", "2", "--n", "64"]
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # what an unpinned `train` would have used on this machine
    try:
        assert main(["train", "--dataset", "digits", "--steps", "4", "--batch-size", "16",
                     "--width", "8", "--store", str(tmp_path / "train"), "--json"] + common) == 0
        assert torch.get_num_threads() == 2  # restored after the cell
    finally:
        torch.set_num_threads(before)
    trained = json.loads(capsys.readouterr().out)
    for workers in ("1", "2"):
        # one cell per process, as `train`: a fused group's curves equal these only up to float
        # reassociation (tests/test_fused_*), and this test is about launching, not fusing
        assert main(["run", "--grid", str(grid), "--store", str(tmp_path / workers),
                     "--workers", workers, "--no-fuse"] + common) == 0
    for workers in ("1", "2"):
        with Store(tmp_path / workers) as store:
            record = store.get(trained["cell_id"])
        assert record.runtime["threads"] == trained["runtime"]["threads"] == 1
        assert record.metrics == trained["metrics"]  # bit-identical, not approximately equal
        assert record.curves == trained["curves"]
