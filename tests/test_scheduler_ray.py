"""`--executor ray`: each cell or fused group a Ray task writing to the same store, lease-safe.
Runs against a local Ray that the test starts; skipped when Ray is not installed (an optional
extra). The driver's rules with fused groups (retries, left cells, splitting, dry run) are tested
without Ray in tests/test_ray_fused.py."""
import pytest

from bench.schedule.executor import run_cells
from bench.schedule.grid import load_grid
from tests.scheduler_util import ROOT, TINY_GRID, lease_attempts

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'ganbench[ray]'")


def test_ray_runs_a_grid_into_the_store_like_the_local_pool(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=30))
    cells = load_grid(str(path)).cells
    here = {r.cell_id: r for r in run_cells(cells, tmp_path / "local", progress=False,
                                            curve_every=0)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        remote = {r.cell_id: r for r in run_cells(cells, tmp_path / "ray", executor="ray",
                                                  progress=False, curve_every=0)}
        # a second run finds every cell stored: nothing is trained again
        again = list(run_cells(cells, tmp_path / "ray", executor="ray", progress=False,
                               curve_every=0))
        alone = {r.cell_id: r for r in run_cells(cells, tmp_path / "alone", executor="ray",
                                                 progress=False, curve_every=0, fuse=False)}
    finally:
        ray.shutdown()
    assert remote.keys() == here.keys() == alone.keys() and len(again) == len(here)
    assert {r.status for r in remote.values()} == {"done"}
    assert lease_attempts(tmp_path / "ray") == {cid: 1 for cid in here}
    for cid, r in remote.items():  # same pinned threads: the same numbers as in-process
        # 2 variants x 2 seeds on 2 CPUs: the in-process run's groups, one Ray task each
        assert r.runtime["engine"] == here[cid].runtime["engine"] == {
            "name": "fused", "cells": 2, "device": "cpu"}
        assert r.metrics == here[cid].metrics and r.curves == here[cid].curves
        assert "engine" not in alone[cid].runtime  # --no-fuse: a task per cell
