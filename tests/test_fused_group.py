"""The fused group entry (bench/schedule/fused/group.py): a group of cells trained fused is stored
as cells run one at a time — one record per cell with the same fields, one checkpoint per cell,
leases released — with `runtime.engine` naming the engine; stored cells are not retrained; cells
that cannot fuse are left to `run_cell` with the reason; planning says which cells fuse."""
from __future__ import annotations

import pytest

from bench.schedule.leases import Leases
from bench.metrics import EvalSpec
from bench.schedule.runner import run_cell
from bench.store import Store
from bench.train import CHECKPOINT
from bench.schedule.fused.group import run_fused_group
from bench.schedule.fused.plan import plan_groups
from tests.tiny import tiny_cell

SPEC = EvalSpec(metrics=("modes",), num_samples=500)


def cells(n=3, tricks=(), steps=6):
    return [tiny_cell("ring8", tricks, steps=steps, seed=s) for s in range(n)]


def test_a_fused_group_stores_one_single_cell_record_per_cell(tmp_path):
    group = cells()
    fused = Store(tmp_path / "fused")
    out = run_fused_group(group, fused, eval_spec=SPEC, curve_every=0)
    assert not out.left
    alone = Store(tmp_path / "alone")
    for cell in group:
        rec = out.records[cell.cell_id]
        ref = run_cell(cell, alone, eval_spec=SPEC, curve_every=0, progress=False)
        assert fused.get(cell.cell_id).to_json() == rec.to_json()
        assert (fused.cell_dir(cell.cell_id) / CHECKPOINT).exists()
        assert set(vars(rec)) == set(vars(ref))
        assert (rec.status, rec.step, rec.config, rec.optim, rec.nets) == \
            (ref.status, ref.step, ref.config, ref.optim, ref.nets)
        assert rec.metrics.keys() == ref.metrics.keys()
        for name, points in ref.curves.items():
            for (s1, v1), (s2, v2) in zip(points, rec.curves[name]):
                assert s1 == s2 and abs(v1 - v2) <= 1e-5 * max(abs(v1), 1e-6)
        assert rec.runtime["engine"] == {"name": "fused", "cells": 3, "device": "cpu"}
        assert "engine" not in ref.runtime
    with Leases(fused.db_path) as leases:
        assert leases.live() == []


def test_stored_cells_are_returned_not_retrained(tmp_path):
    group = cells(2)
    store = Store(tmp_path / "s")
    first = run_fused_group(group, store, eval_spec=SPEC, curve_every=0)
    again = run_fused_group(group, store, eval_spec=SPEC, curve_every=0)
    for cell in group:
        assert again.records[cell.cell_id].created_at == first.records[cell.cell_id].created_at


def test_planning_groups_by_shape_and_says_why_not():
    group = cells(3) + cells(2, ("spectral_norm",)) + cells(2, ("label_flip",)) + \
        cells(1, steps=9)
    plan = plan_groups(group, fuse=True)
    assert [len(g) for g in plan.groups] == [3]
    reasons = set(plan.alone.values())
    assert "label_flip: hook 'targets' has no fused form" in reasons
    assert "D.blocks.0.main: a parametrized layer (e.g. spectral norm) has no fused form" in reasons
    assert "no other cell of its shape and budget" in reasons
    assert all(why == "fusing is off" for why in plan_groups(group, fuse=False).alone.values())


def test_cells_whose_layers_do_not_fuse_are_left_to_run_cell(tmp_path):
    group = cells(2, ("spectral_norm",))
    out = run_fused_group(group, Store(tmp_path / "s"), eval_spec=SPEC, curve_every=0)
    assert not out.records
    assert all("spectral norm" in why for why in out.left.values())


def test_a_retried_failed_cell_is_retrained_and_keeps_its_history(tmp_path):
    from bench.schedule.runner import failed_record

    group = cells(2)
    store = Store(tmp_path / "s")
    store.put(failed_record(group[0], "boom"))
    kept = run_fused_group(group, store, eval_spec=SPEC, curve_every=0)
    assert kept.records[group[0].cell_id].status == "failed"  # not retried unless asked
    out = run_fused_group(group, store, eval_spec=SPEC, curve_every=0, retry=("failed",))
    rec = store.get(group[0].cell_id)
    assert rec.status == "done" and out.records[group[0].cell_id].to_json() == rec.to_json()
    assert [h["event"] for h in rec.history] == ["retry"]
    assert rec.history[0]["status"] == "failed"


@pytest.mark.parametrize("error", ["StoreBusy", "DiskFull"])
def test_a_busy_store_or_full_disk_while_scoring_stores_no_failed_record(tmp_path, monkeypatch,
                                                                         error):
    """As for a cell alone (run_cell): another process holding the store's lock too long, or a
    full disk, is not the cell's fault: the error propagates and nothing is stored as failed."""
    from bench.schedule.fused import group as fused_group
    from bench.store.errors import StoreBusy
    from bench.train.checkpoint import DiskFull

    exc = {"StoreBusy": StoreBusy, "DiskFull": DiskFull}[error]

    def scoring(*args):
        raise exc("no")

    monkeypatch.setattr(fused_group, "evaluate", scoring)
    group = cells(2)
    store = Store(tmp_path / "s")
    with pytest.raises(exc):
        run_fused_group(group, store, eval_spec=SPEC, curve_every=0)
    assert not any(store.has(c.cell_id) for c in group)
    with Leases(store.db_path) as leases:
        assert leases.live() == []
