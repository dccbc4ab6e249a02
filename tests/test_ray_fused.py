"""`--executor ray` with fused groups, driven through a stand-in for Ray that runs each task in
this process when it is submitted (no Ray needed; tests/test_scheduler_ray.py runs a real local
Ray): Ray gets the pool's units (a fused group is one task, split over the cluster's CPUs),
each cell of a group has its own lease, checkpoint and record; a group whose task died is
retried once, then its cells are stored `failed`; cells a group leaves run as single-cell tasks;
`--no-fuse` makes every cell its own task; `--dry-run --executor ray` prints Ray's units."""
from __future__ import annotations

import pytest

from bench.cli import main
from bench.schedule import ray_executor
from bench.schedule.executor import run_cells
from bench.schedule.grid import load_grid
from bench.store import Store
from bench.train import CHECKPOINT
from tests.scheduler_util import TINY_GRID, lease_attempts, lease_owners


class TaskDied(RuntimeError):
    """What ray.get raises for a task whose worker died (a stand-in for RayTaskError)."""


class FakeRay:
    """Ray's API as run_ray uses it; tasks run at submission. `fail(n)` makes the next n group
    tasks die before they start (as a killed Ray worker: ray.get raises)."""

    def __init__(self, cpus=2, gpus=0):
        self.cpus, self.gpus = cpus, gpus
        self.submitted: list[tuple[dict, str, dict]] = []  # (payload, device, options)
        self.group_failures = 0

    # the module's functions
    def is_initialized(self):
        return True

    def cluster_resources(self):
        return {"CPU": float(self.cpus), **({"GPU": float(self.gpus)} if self.gpus else {})}

    def remote(self, fn):
        fake = self

        class Task:
            def options(self, **kw):
                self.kw = kw
                return self

            def remote(self, unit_json, store_root, device, opts):
                fake.submitted.append((unit_json, device, dict(self.kw)))
                if "group" in unit_json and fake.group_failures:
                    fake.group_failures -= 1
                    return Ref(error=TaskDied("the worker running this task died"))
                return Ref(reply=fn(unit_json, store_root, device, opts))
        return Task()

    def wait(self, refs, num_returns, timeout):
        return refs[:num_returns], refs[num_returns:]

    def get(self, ref):
        if ref.error is not None:
            raise ref.error
        return ref.reply

    def cancel(self, ref):
        pass


class Ref:
    def __init__(self, reply=None, error=None):
        self.reply, self.error = reply, error


@pytest.fixture
def fake_ray(monkeypatch):
    ray = FakeRay()
    monkeypatch.setattr(ray_executor, "_import_ray", lambda: ray)
    return ray


@pytest.fixture
def cells(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=20))  # 2 variants x 2 seeds: 2 groups of 2
    return load_grid(str(path)).cells


def stored(store):
    with Store(store) as s:
        return {r.cell_id: r for r in s.records()}


def groups_submitted(ray):
    return [len(p["group"]) if "group" in p else 1 for p, _, _ in ray.submitted]


def test_ray_runs_fused_groups_as_one_task_each_like_the_pool(tmp_path, fake_ray, cells):
    opts = dict(progress=False, curve_every=0)
    ray_recs = {r.cell_id: r for r in run_cells(cells, tmp_path / "ray", executor="ray",
                                                **opts)}
    pool = {r.cell_id: r for r in run_cells(cells, tmp_path / "pool", workers=2, **opts)}
    assert groups_submitted(fake_ray) == [2, 2]  # the pool's units for 2 workers
    assert all(o == {"num_cpus": 1, "num_gpus": 0} and d == "cpu"
               for _, d, o in fake_ray.submitted)
    assert ray_recs.keys() == pool.keys() and len(ray_recs) == 4
    for cid, r in ray_recs.items():  # one record, checkpoint and lease per cell
        assert r.status == "done" and r.runtime["engine"]["cells"] == 2
        assert (tmp_path / "ray" / "cells" / cid / CHECKPOINT).exists()
        # the same units: the same computation, bit for bit
        assert r.metrics == pool[cid].metrics and r.curves == pool[cid].curves
    assert lease_attempts(tmp_path / "ray") == {cid: 1 for cid in ray_recs}
    assert lease_owners(tmp_path / "ray") == []
    assert stored(tmp_path / "ray").keys() == ray_recs.keys()


def test_ray_no_fuse_runs_every_cell_as_its_own_task(tmp_path, fake_ray, cells):
    recs = list(run_cells(cells, tmp_path / "s", executor="ray", fuse=False, progress=False,
                          curve_every=0))
    assert groups_submitted(fake_ray) == [1, 1, 1, 1]
    assert {r.runtime.get("engine") for r in recs} == {None}


def test_ray_groups_are_split_over_the_clusters_cpus(tmp_path, fake_ray, cells):
    fake_ray.cpus = 4  # 2 groups of 2 on 4 CPUs: each cell alone keeps every CPU busy
    recs = list(run_cells(cells, tmp_path / "s", executor="ray", progress=False,
                          curve_every=0))
    assert groups_submitted(fake_ray) == [1, 1, 1, 1] and len(recs) == 4
    fake_ray.cpus, fake_ray.gpus, fake_ray.submitted = 1, 1, []  # with a GPU: whole, on it
    list(run_cells(cells, tmp_path / "s2", executor="ray", progress=False, curve_every=0,
                   cells_per_gpu=2, device="cpu"))  # --device cpu: groups stay on the CPU
    assert [(d, o["num_gpus"]) for _, d, o in fake_ray.submitted] == [("cpu", 0)] * 2
    assert ray_executor._placement(ray_executor.FusedGroup(tuple(cells[:2])), 1, None, 2) == \
        ("cuda", {"num_cpus": 1, "num_gpus": 0.5})


def test_a_ray_group_whose_task_died_is_retried_once_then_its_cells_fail(tmp_path, fake_ray,
                                                                         cells, capsys):
    fake_ray.group_failures = 1
    recs = {r.cell_id: r for r in run_cells(cells, tmp_path / "s", executor="ray",
                                            progress=False, curve_every=0)}
    assert groups_submitted(fake_ray) == [2, 2, 2]  # the dead group again, whole
    assert {r.status for r in recs.values()} == {"done"} and len(recs) == 4
    assert "Ray task failed: TaskDied" in capsys.readouterr().err
    fake_ray.group_failures, fake_ray.submitted = 99, []
    recs = {r.cell_id: r for r in run_cells(cells, tmp_path / "s2", executor="ray",
                                            progress=False, curve_every=0)}
    assert groups_submitted(fake_ray) == [2, 2, 2, 2]
    assert {r.status for r in recs.values()} == {"failed"} and len(recs) == 4
    assert all(r.reason.startswith("Ray task failed: TaskDied: the worker running this task "
                                   "died (2 times)") for r in recs.values())


def test_cells_a_ray_group_leaves_run_as_single_cell_tasks(tmp_path, fake_ray, cells):
    from bench.schedule.leases import Leases

    held = cells[0]  # another live run holds its lease: the group leaves it; it waits
    with Store(tmp_path / "s"):
        pass
    with Leases(tmp_path / "s" / "results.sqlite") as leases:
        assert leases.acquire(held.cell_id, "other-host:1:x")[0] == "taken"
    monkey_poll = ray_executor.BUSY_POLL_S
    try:
        ray_executor.BUSY_POLL_S = 0.0
        it = run_cells(cells, tmp_path / "s", executor="ray", progress=False, curve_every=0)
        first = [next(it) for _ in range(3)]  # the three others: stored
        assert held.cell_id not in {r.cell_id for r in first}
        # `held`'s group left both: `held` (busy) and its partner (no other cell at its step);
        # each went on as a single-cell task; `held` is tried again (the poll is 0 s here)
        # until its holder stores it
        sizes = groups_submitted(fake_ray)
        assert sizes[:2] == [2, 2] and set(sizes[2:]) == {1}
        singles = [(p["seed"], p["tricks"]) for p, _, _ in fake_ray.submitted[2:]]
        assert (held.seed, []) in singles and (1 - held.seed, []) in singles
        assert all(t == [] for _, t in singles)  # only `held`'s group was left
    finally:
        ray_executor.BUSY_POLL_S = monkey_poll
        it.close()


def test_the_dry_run_with_ray_lists_rays_tasks(tmp_path, fake_ray, capsys):
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=20))
    store = tmp_path / "s"
    fake_ray.cpus = 3
    assert main(["run", "--grid", str(path), "--store", str(store), "--executor", "ray",
                 "--dry-run"]) == 0
    out = capsys.readouterr().out
    # 2 groups of 2 on 3 CPUs: one is split so that every CPU has a task
    assert ("fused training (docs/fused.md; --no-fuse turns it off): 2 of 4 cells to train in "
            "1 group(s) on the CPU, split over the Ray cluster's 3 CPU(s), one Ray task per "
            "group, sizes 2") in out
    assert "one cell per Ray task: 2 cells" in out
    assert "with 3 worker(s)" in out  # the estimate counts the cluster's CPUs
    assert not store.exists()
    assert main(["run", "--grid", str(path), "--store", str(store), "--executor", "ray",
                 "--dry-run", "--no-fuse"]) == 0
    assert "4 cells train one per Ray task" in capsys.readouterr().out
