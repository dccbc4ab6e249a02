"""The per-cell sample file: written when a cell is scored, equal to what was scored, and
regenerated from the checkpoint by `ganbench samples`."""
import numpy as np
import pytest
import torch

from bench.cli import main
from bench.data import load_dataset
from bench.metrics import EvalSpec
from bench.metrics.modes2d import mode_coverage_2d
from bench.schedule.runner import run_cell
from bench.store import Store
from bench.store.samples import SAMPLE_FILE, SAMPLE_PNG, tile_images
from tests.tiny import tiny_cell


def test_2d_sample_file_holds_the_scored_points(tmp_path):
    cell = tiny_cell("ring8", steps=6)
    with Store(tmp_path) as store:
        record = run_cell(cell, store, eval_spec=EvalSpec(metrics=("modes",)), progress=False,
                          curve_every=0)
    f = tmp_path / "cells" / cell.cell_id / SAMPLE_FILE
    with np.load(f) as z:
        points, centres = z["points"], z["centres"]
    assert points.shape == (2500, 2) and centres.shape == (8, 2)
    # the file holds exactly the points the metrics were computed on
    again = mode_coverage_2d(torch.from_numpy(points), load_dataset("ring8"))
    assert again == pytest.approx(record.metrics)

    # `ganbench samples` rebuilds the same file from the final checkpoint, or N points
    f.unlink()
    assert main(["samples", "--store", str(tmp_path), "--cell", cell.cell_id[:8]]) == 0
    with np.load(f) as z:
        np.testing.assert_array_equal(z["points"], points)
    assert main(["samples", "--store", str(tmp_path), "--cell", cell.cell_id, "--n", "100"]) == 0
    with np.load(f) as z:
        np.testing.assert_array_equal(z["points"], points[:100])


def test_image_cell_writes_64_images_and_a_png_grid(tmp_path):
    cell = tiny_cell("digits", steps=2)
    with Store(tmp_path) as store:
        run_cell(cell, store, eval_spec=EvalSpec(metrics=("fid",), num_samples=64),
                 progress=False, curve_every=0)
    folder = tmp_path / "cells" / cell.cell_id
    with np.load(folder / SAMPLE_FILE) as z:
        images = z["images"]
    assert images.shape == (64, 1, 16, 16) and images.dtype == np.uint8
    assert (folder / SAMPLE_PNG).stat().st_size > 0


def test_samples_command_errors_are_one_line(tmp_path, capsys):
    cell = tiny_cell("ring8", steps=2)
    with Store(tmp_path) as store:
        run_cell(cell, store, eval_spec=EvalSpec(metrics=("modes",)), progress=False,
                 curve_every=0)
    (tmp_path / "cells" / cell.cell_id / "checkpoint.pt").unlink()
    assert main(["samples", "--store", str(tmp_path), "--cell", cell.cell_id]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no final checkpoint" in err[0]
    assert main(["samples", "--store", str(tmp_path), "--cell", "zzzz"]) == 2
    assert main(["samples", "--store", str(tmp_path), "--cell", cell.cell_id, "--n", "0"]) == 2


def test_tile_images_layout():
    imgs = np.arange(5 * 1 * 2 * 2, dtype=np.uint8).reshape(5, 1, 2, 2)
    grid = tile_images(imgs, scale=1)
    assert grid.shape == (2 * 3 + 1, 3 * 3 + 1, 1)  # 3 columns, 2 rows, 1-px borders
    np.testing.assert_array_equal(grid[1:3, 4:6, 0], imgs[1, 0])
