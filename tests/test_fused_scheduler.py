"""Fused groups in the scheduler (bench/schedule/executor.py, fused/plan.py, fused/group.py): a
grid run with fusion stores the records the same grid stores without it (up to float
reassociation; cells that do not fuse bit for bit), in-process and on the worker pool, for 2-D
and image cells; a run killed mid-group resumes each cell from its own checkpoint and trains no
cell twice; Ctrl-C during a group checkpoints every cell of it; `--dry-run` says which cells are
fused and why the others are not; how groups are split over workers and which trick params
they share; docs/fused.md's table is the code's."""
from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest

from bench.cli import main
from bench.schedule.executor import run_cells
from bench.schedule.fused.plan import FusedGroup, group_device, split_groups, work_units
from bench.schedule.grid import load_grid
from bench.store import Store
from bench.train import CHECKPOINT
from bench.train.checkpoint import load as load_checkpoint
from bench.train.fused import FusedTrainer
from tests.scheduler_util import TINY_GRID, cli_cmd, lease_attempts, lease_owners, wait_for
from tests.tiny import tiny_cell

GRID = """
description = "fused scheduler test grid"
design = "add-one"
tricks = ["label_smoothing", "spectral_norm"]
seeds = [0, 1, 2, 3, 4]  # Must 3 of issue 18: a 5-seed fused run equals 5 cells alone

[[data]]
name = "ring8"
steps = {steps}
batch_size = 32
width = 16
checkpoint_every = 10
log_every = 5
"""


def grid_file(tmp_path, text=GRID, steps=20):
    path = tmp_path / f"g{steps}.toml"
    path.write_text(text.format(steps=steps))
    return path


def stored(store):
    with Store(store) as s:
        return {r.cell_id: r for r in s.records()}


# high quality counts samples within 3 sigma of a mode (2,500 scored): a ~1e-6 difference in G
# moves a sample on the boundary by a whole 1/2,500 (seen: 0.0136 vs 0.0144, two samples)
SAMPLE_SHARE_SLACK = 4 / 2500


def close(x, y, rtol=1e-4, atol=1e-6):
    return abs(x - y) <= atol + rtol * abs(y)


def assert_same_record(fused, alone):
    """Equal up to float reassociation: fused float32 steps sum in another order than a cell
    alone (see tests/test_fused_engine.py), so losses and metrics agree to ~1e-5 here."""
    assert (fused.cell_id, fused.status, fused.step, fused.config, fused.optim, fused.nets,
            fused.protocol) == (alone.cell_id, alone.status, alone.step, alone.config,
                                alone.optim, alone.nets, alone.protocol)
    assert fused.metrics.keys() == alone.metrics.keys()
    for k, v in alone.metrics.items():
        if k == "high_quality":  # a share of samples: reassociation can move one across 3 sigma
            assert abs(fused.metrics[k] - v) <= SAMPLE_SHARE_SLACK, (k, fused.metrics[k], v)
        else:
            assert close(fused.metrics[k], v), (k, fused.metrics[k], v)
    assert fused.curves.keys() == alone.curves.keys()
    for name, points in alone.curves.items():
        got = fused.curves[name]
        assert [s for s, _ in got] == [s for s, _ in points], name
        for (_, x), (_, y) in zip(got, points):
            assert close(x, y), (name, x, y)
    assert [f["flag"] for f in fused.flags] == [f["flag"] for f in alone.flags]
    assert set(fused.timings) == set(alone.timings)


def test_a_fused_grid_stores_the_records_of_the_grid_run_without_fusion(tmp_path):
    cells = load_grid(str(grid_file(tmp_path))).cells
    opts = dict(progress=False, curve_every=10)
    plain = {r.cell_id: r for r in run_cells(cells, tmp_path / "plain", fuse=False, **opts)}
    fused = {r.cell_id: r for r in run_cells(cells, tmp_path / "fused", fuse=True, **opts)}
    pool = {r.cell_id: r for r in run_cells(cells, tmp_path / "pool", workers=2, fuse=True,
                                            **opts)}
    assert set(plain) == set(fused) == set(pool) and len(plain) == 15
    engines = {}
    for cid, ref in plain.items():
        assert "engine" not in ref.runtime
        assert_same_record(fused[cid], ref)
        assert stored(tmp_path / "fused")[cid].to_json() == fused[cid].to_json()
        assert (tmp_path / "fused" / "cells" / cid / CHECKPOINT).exists()
        engines[fused[cid].label] = fused[cid].runtime.get("engine")
        # the pool hands out the same groups: the same computation, bit for bit
        assert pool[cid].metrics == fused[cid].metrics and pool[cid].curves == fused[cid].curves
        assert pool[cid].runtime.get("engine") == fused[cid].runtime.get("engine")
    assert engines == {"baseline": {"name": "fused", "cells": 5, "device": "cpu"},
                       "label_smoothing": {"name": "fused", "cells": 5, "device": "cpu"},
                       "spectral_norm": None}  # no fused form: trained alone, as before
    for cid, ref in plain.items():
        if engines[ref.label] is None:
            assert fused[cid].metrics == ref.metrics and fused[cid].curves == ref.curves
    assert lease_owners(tmp_path / "fused") == [] and lease_owners(tmp_path / "pool") == []
    assert set(lease_attempts(tmp_path / "pool").values()) == {1}


def test_groups_are_split_so_that_every_worker_has_work():
    cells = [tiny_cell(seed=s) for s in range(5)]
    assert [len(p) for p in split_groups([cells], 0, 1, 64)] == [5]
    assert sorted(len(p) for p in split_groups([cells], 0, 2, 64)) == [2, 3]
    assert sorted(len(p) for p in split_groups([cells], 0, 4, 64)) == [1, 1, 1, 2]
    assert sorted(len(p) for p in split_groups([cells], 3, 2, 64)) == [5]  # others fill them
    assert sorted(len(p) for p in split_groups([cells], 0, 1, 2)) == [1, 2, 2]
    units, plan = work_units(cells, workers=2)
    assert [len(u) for u in units if isinstance(u, FusedGroup)] == [3, 2]
    units, plan = work_units(cells, workers=2, fuse=False)
    assert units == cells and set(plan.alone.values()) == {"fusing is off"}
    # PacGAN's nets measured no faster fused on a CPU: alone there by default, fused when asked
    # for or on a GPU
    import dataclasses

    from bench.core.config import NetConfig

    pac = [dataclasses.replace(c, net=NetConfig(z_dim=8, arch="pacgan")) for c in cells[:2]]
    units, plan = work_units(pac, workers=1)
    assert units == pac and "pacgan nets fused measured no faster" in plan.alone[pac[0].cell_id]
    assert [len(u) for u in work_units(pac, workers=1, fuse=True)[0]] == [2]
    assert [len(u) for u in work_units(pac, workers=1, gpus=1)[0]] == [2]
    # minibatch discrimination's fused layer loops over the models: alone on a CPU by default
    mbd = [tiny_cell(tricks=["minibatch_discrimination"], seed=s) for s in range(2)]
    units, plan = work_units(mbd, workers=1)
    assert units == mbd and "runs model by model" in plan.alone[mbd[0].cell_id]
    assert [len(u) for u in work_units(mbd, workers=1, gpus=1)[0]] == [2]
    # with a GPU a group goes to it whole (placement tested with a fake GPU count)
    units, _ = work_units(cells, workers=2, gpus=1)
    assert [len(u) for u in units] == [5]
    assert group_device(gpus=1, device=None, gpu_load=[0], cells_per_gpu=2) == "cuda:0"
    assert group_device(gpus=1, device=None, gpu_load=[2], cells_per_gpu=2) is None  # full
    assert group_device(gpus=1, device="cpu", gpu_load=[0], cells_per_gpu=2) == "cpu"
    assert group_device(gpus=0, device=None, gpu_load=[], cells_per_gpu=1) == "cpu"


def test_a_group_shares_the_trick_params_that_shape_nets_or_loop():
    """Params the engine reads per cell may differ within a group (label smoothing's targets,
    TTUR's ratio); params that shape D or the loop may not (packing's m, wgan_gp's n_critic):
    such cells form one group per value, as pacgan-t1's m = 2, 3, 4 cells do."""
    from bench.schedule.fused.plan import plan_groups

    def cells(trick, values, key):
        return [tiny_cell(tricks=[(trick, {key: v})], seed=s) for v in values for s in (0, 1)]

    for trick, key, values in (("label_smoothing", "real", (0.9, 0.8)),
                               ("ttur", "ratio", (2.0, 4.0))):
        assert [len(g) for g in plan_groups(cells(trick, values, key), fuse=True).groups] == [4]
    for trick, key, values in (("packing", "m", (2, 3)), ("wgan_gp", "n_critic", (2, 5))):
        groups = plan_groups(cells(trick, values, key), fuse=True).groups
        assert [len(g) for g in groups] == [2, 2], trick
        assert all(len({c.tricks for c in g}) == 1 for g in groups)
    plan = plan_groups(list(load_grid("pacgan-t1").cells), fuse=True)
    assert [len(g) for g in plan.groups] == [10] * 8 and not plan.alone


def test_no_fuse_env_and_option_train_every_cell_alone(tmp_path, monkeypatch, capsys):
    path = grid_file(tmp_path, steps=4)
    base = ["run", "--grid", str(path), "--store", str(tmp_path / "s"), "--workers", "1",
            "--curve-every", "0", "--only", "baseline"]
    assert main(base + ["--no-fuse"]) == 0
    assert {r.runtime.get("engine") for r in stored(tmp_path / "s").values()} == {None}
    monkeypatch.setenv("GANBENCH_NO_FUSE", "1")
    assert main(base + ["--store", str(tmp_path / "s2")]) == 0
    assert {r.runtime.get("engine") for r in stored(tmp_path / "s2").values()} == {None}
    monkeypatch.delenv("GANBENCH_NO_FUSE")
    assert main(base + ["--store", str(tmp_path / "s3")]) == 0
    assert {r.runtime["engine"]["cells"] for r in stored(tmp_path / "s3").values()} == {5}


def test_the_dry_run_says_which_cells_are_fused_and_why_others_are_not(tmp_path, capsys):
    path = grid_file(tmp_path)
    store = tmp_path / "s"
    assert main(["run", "--grid", str(path), "--store", str(store), "--workers", "2",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert ("fused training (docs/fused.md; --no-fuse turns it off): 10 of 15 cells to train in "
            "2 group(s) on the CPU, split over 2 worker(s), sizes 5, 5") in out
    assert "baseline" in out and "1 group(s) of 5" in out
    assert "one cell per worker: 5 cells" in out
    assert ("5 cells (spectral_norm): D.blocks.0.main: a parametrized layer (e.g. spectral norm) "
            "has no fused form") in out
    assert not store.exists()  # a dry run writes nothing
    assert main(["run", "--grid", str(path), "--store", str(store), "--workers", "2",
                 "--dry-run", "--no-fuse"]) == 0
    assert "fused training: off (--no-fuse or GANBENCH_NO_FUSE=1); 15 cells " \
           "train one per worker" in capsys.readouterr().out


def _checkpoint_steps(store):
    out = {}
    for path in store.glob(f"cells/*/{CHECKPOINT}"):
        out[path.parent.name] = load_checkpoint(path)["step"]
    return out


@pytest.fixture
def starts(monkeypatch):
    """The step each cell resumes at (its checkpoint's, or 0) each time a Trainer is built for
    it: by a fused group (which builds its cells' Trainers) or by a cell alone."""
    from bench.train import Trainer

    seen: dict[str, list[int]] = {}
    real = Trainer.try_resume

    def spy(self):
        resumed = real(self)
        seen.setdefault(self.cell.cell_id, []).append(self.step)
        return resumed

    monkeypatch.setattr(Trainer, "try_resume", spy)
    return seen


def test_a_run_killed_mid_group_resumes_every_cell_from_its_checkpoint(tmp_path, starts):
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=400))  # 2 variants x 2 seeds: 2 groups of 2
    cells = load_grid(str(path)).cells
    store = tmp_path / "s"
    cmd = cli_cmd("run", "--grid", str(path), "--store", str(store), "--workers", "2",
                  "--curve-every", "0")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # a group has written its cells' checkpoints (all at one step: not between two cells'
    # writes) and goes on training
    ids = {label: {c.cell_id for c in cells if c.label == label} for label in
           {c.label for c in cells}}

    def a_group_checkpointed() -> bool:
        steps = _checkpoint_steps(store)
        return any(len({steps.get(cid, -1) for cid in group}) == 1
                   and steps.get(next(iter(group)), -1) >= 40 for group in ids.values())

    assert wait_for(a_group_checkpointed, 240)
    proc.kill()
    proc.wait()
    time.sleep(1.5)  # the workers die with their parent
    before = stored(store)
    ckpt = {cid: s for cid, s in _checkpoint_steps(store).items() if cid not in before}
    assert ckpt, "killed after every cell was stored"
    resumed = {r.cell_id: r for r in run_cells(cells, store, progress=False, curve_every=0)}
    assert set(resumed) == {c.cell_id for c in cells}
    assert {r.status for r in resumed.values()} == {"done"}
    for cid, step in ckpt.items():  # each interrupted cell went on from its own checkpoint
        assert set(starts[cid]) == {step}, (cid, starts[cid], step)
    attempts = lease_attempts(store)
    assert all(attempts[cid] == 1 for cid in before)  # stored before the kill: never again
    # the kill's run and the resume; a cell whose group left it (its partner at another step)
    # is leased once more to train alone
    assert all(n <= (3 if "engine" not in resumed[cid].runtime else 2)
               for cid, n in attempts.items())
    # the resumed groups end exactly as an uninterrupted fused run. A kill between two cells'
    # checkpoint writes leaves a group's cells at different steps: those resume alone, equal
    # up to float reassociation
    fresh = {r.cell_id: r for r in run_cells(cells, tmp_path / "fresh", progress=False,
                                             curve_every=0)}
    fused_again = 0
    for cid, r in fresh.items():
        if cid in ckpt and "engine" not in resumed[cid].runtime:
            partners = [c for c in cells if c.label == resumed[cid].label and c.cell_id != cid]
            assert any(ckpt.get(p.cell_id, -1) != ckpt[cid] for p in partners)
            assert_same_record(resumed[cid], r)
            continue
        fused_again += cid in ckpt
        assert resumed[cid].metrics == r.metrics and resumed[cid].curves == r.curves
    assert fused_again or len(ckpt) == 1 or len(set(ckpt.values())) > 1


def test_ctrl_c_during_a_fused_group_checkpoints_every_cell_of_it(tmp_path):
    from bench.schedule.runner import STOP

    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=3000))
    cells = load_grid(str(path)).cells
    store = tmp_path / "s"

    def press_ctrl_c():
        if wait_for(lambda: len(_checkpoint_steps(store)) >= 2, 120):
            os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        list(run_cells(cells, store, workers=1, progress=False, curve_every=0))
    presser.join()
    assert time.monotonic() - started < 200
    assert not STOP.is_set() and lease_owners(store) == []
    steps = _checkpoint_steps(store)
    # the running group: both its cells checkpointed when it stopped, at one step
    assert len(steps) == 2 and len(set(steps.values())) == 1, steps
    assert not stored(store)


MUST_FUSE = ["label_smoothing", "one_sided_label_smoothing", "instance_noise",
             "minibatch_stddev", "wgan_gp", "gradient_penalty", "unrolled", "packing"]


@pytest.mark.parametrize("name", MUST_FUSE)
def test_the_tricks_issue_18_lists_fuse(name):
    from bench.schedule.fused.support import trick_support
    from bench.trickapi.registry import list_tricks

    if name not in list_tricks():
        pytest.skip(f"{name} is not installed on this checkout")
    assert trick_support(name) is None
    if name == "unrolled":  # second order is the default
        from bench.trickapi.registry import create_trick

        assert create_trick("unrolled").p.first_order is False


def test_docs_fused_lists_every_trick_as_the_code_decides():
    from pathlib import Path

    from bench.schedule.fused.support import DOC_END, DOC_START, support_table

    text = (Path(__file__).resolve().parents[1] / "docs" / "fused.md").read_text()
    table = text.split(DOC_START, 1)[1].split(DOC_END, 1)[0].strip()
    assert table == support_table().strip(), \
        "docs/fused.md is stale: run python -m bench.schedule.fused.support docs/fused.md"


IMAGE_GRID = """
description = "fused image cells"
design = "add-one"
tricks = ["batch_norm"]
seeds = [0, 1]

[[data]]
name = "digits"
steps = {steps}
batch_size = 16
width = 8
log_every = 2
"""


def test_image_cells_fuse_and_store_the_records_of_the_run_without_fusion(tmp_path, capsys):
    """digits 16x16 (DCGAN-style conv nets): on a CPU they fuse by default (they measured a win,
    docs/fused.md); records equal the unfused run's up to float reassociation."""
    cells = load_grid(str(grid_file(tmp_path, IMAGE_GRID, steps=4))).cells
    units, plan = work_units(cells, workers=1)
    assert [len(u) for u in units] == [2, 2] and not plan.alone
    opts = dict(progress=False, curve_every=0)
    plain = {r.cell_id: r for r in run_cells(cells, tmp_path / "plain", fuse=False, **opts)}
    fused = {r.cell_id: r for r in run_cells(cells, tmp_path / "fused", **opts)}
    assert set(plain) == set(fused) and len(plain) == 4
    for cid, ref in plain.items():
        assert fused[cid].runtime["engine"] == {"name": "fused", "cells": 2, "device": "cpu"}
        assert_same_record(fused[cid], ref)


def test_cells_whose_data_cannot_be_loaded_are_planned_alone(monkeypatch):
    """Planning builds a group's nets: missing image files leave its cells to run_cell (which
    stores the failure with the reason), instead of failing the plan."""
    from bench.data.base import DataError
    from bench.schedule.fused import plan as fused_plan

    def missing(*a, **kw):
        raise DataError("mnist files not found")

    monkeypatch.setattr(fused_plan, "load_dataset", missing)
    cells = [tiny_cell(seed=s) for s in range(2)]
    plan = fused_plan.plan_groups(cells)
    assert not plan.groups
    assert set(plan.alone.values()) == {"its data cannot be loaded (DataError)"}
