"""`--executor ray` and GPUs, as a mechanism (no GPU here): which units ask Ray for a share of a
GPU (`num_gpus = 1 / --cells-per-gpu`) and which ask for none, the device a task resolves from
`ray.get_gpu_ids()` and CUDA_VISIBLE_DEVICES (the GPU Ray gave it, not the driver's pick), and the
one-line refusal (exit 2) of a CUDA `--device` on a cluster without GPUs. Runs through the
stand-in for Ray of tests/test_ray_fused.py; the last test asks a real local Ray, started with
declared GPUs, what it gives a task (skipped without Ray)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from bench.cli import main
from bench.core.config import ConfigError
from bench.schedule import ray_executor, units
from bench.schedule.executor import run_cells
from bench.schedule.fused.plan import FusedGroup
from bench.schedule.ray_executor import _placement, task_device
from tests.scheduler_util import ROOT, TINY_GRID
from tests.test_ray_fused import FakeRay, cells, groups_submitted  # noqa: F401 (fixture)


def _unit(name):
    return SimpleNamespace(data=SimpleNamespace(name=name))


@pytest.mark.parametrize("gpus,device,kind,expected", [
    # a GPU cluster: image cells and fused groups on a 1/N share; 2-D cells alone on the CPU
    (2, None, "image", ("cuda", 0.25)), (2, "auto", "group", ("cuda", 0.25)),
    (2, "auto", "2d", ("cpu", 0)),
    # --device cuda / cuda:N: every unit on a share; the task resolves its GPU (never cuda:N)
    (2, "cuda", "2d", ("cuda", 0.25)), (2, "cuda:1", "image", ("cuda", 0.25)),
    (2, "cuda:1", "group", ("cuda", 0.25)),
    # --device cpu, or no GPU in the cluster: no GPU asked for
    (2, "cpu", "image", ("cpu", 0)), (2, "cpu", "group", ("cpu", 0)),
    (0, None, "image", ("cpu", 0)), (0, "auto", "group", ("cpu", 0)),
])
def test_placement_asks_ray_for_a_gpu_share_exactly_when_the_unit_trains_on_a_gpu(
        gpus, device, kind, expected, cells):  # noqa: F811
    unit = (FusedGroup(tuple(cells[:2])) if kind == "group"
            else _unit("digits" if kind == "image" else "ring8"))
    dev, options = _placement(unit, gpus, device, 4)
    assert (dev, options["num_gpus"]) == expected and options["num_cpus"] == 1


def test_placement_refuses_cuda_without_gpus():
    with pytest.raises(ConfigError, match="no GPU resources"):
        _placement(_unit("digits"), 0, "cuda", 4)


@pytest.mark.parametrize("ids,visible,expected", [
    (["3"], "3", "cuda:0"),  # Ray set CUDA_VISIBLE_DEVICES to the task's GPU: it is cuda:0
    ([3], "3", "cuda:0"),
    (["2"], "0,1,2,3", "cuda:2"),  # RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES: its position
    (["5"], "4, 5", "cuda:1"),
    ([1], None, "cuda:1"),  # no variable at all: the GPU's id
    (["GPU-9f2c"], "GPU-9f2c", "cuda:0"),  # UUIDs
])
def test_a_task_trains_on_the_gpu_ray_gave_it(ids, visible, expected):
    assert task_device(ids, visible) == expected


def test_a_task_without_a_gpu_or_with_an_unlisted_one_says_so():
    with pytest.raises(RuntimeError, match="gave it none"):
        task_device([], "0")
    with pytest.raises(RuntimeError, match="does not list"):
        task_device(["GPU-aa"], "GPU-bb")


class FakeRayWithGpus(FakeRay):
    """The stand-in, also as the `ray` module a task imports: `get_gpu_ids` answers `gpu_ids`."""
    gpu_ids = ["7"]

    def get_gpu_ids(self):
        return list(self.gpu_ids)


@pytest.fixture
def gpu_ray(monkeypatch):
    import sys

    ray = FakeRayWithGpus(cpus=2, gpus=1)
    monkeypatch.setattr(ray_executor, "_import_ray", lambda: ray)
    monkeypatch.setitem(sys.modules, "ray", ray)  # what `_unit_task` imports
    seen = []
    real = units.run_unit

    def run_unit(unit_json, store, device, opts):  # note the device, train on the CPU
        seen.append(device)
        return real(unit_json, store, "cpu", opts)
    monkeypatch.setattr(units, "run_unit", run_unit)
    ray.devices = seen
    return ray


def test_run_ray_on_a_gpu_cluster_asks_for_shares_and_trains_on_rays_gpu(
        tmp_path, gpu_ray, monkeypatch, capsys, cells):  # noqa: F811
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "7")  # as Ray sets it for a task given GPU 7
    opts = dict(progress=False, curve_every=0)
    recs = list(run_cells(cells, tmp_path / "a", executor="ray", cells_per_gpu=2, **opts))
    assert len(recs) == 4 and {r.status for r in recs} == {"done"}
    # --device auto: the two fused groups each ask for half a GPU and are told "cuda"
    assert groups_submitted(gpu_ray) == [2, 2]
    assert [(d, o) for _, d, o in gpu_ray.submitted] == [
        ("cuda", {"num_cpus": 1, "num_gpus": 0.5})] * 2
    assert gpu_ray.devices == ["cuda:0"] * 2  # inside the task: the GPU Ray gave it

    # --no-fuse: 2-D cells alone ask for no GPU and train on the CPU
    gpu_ray.submitted, gpu_ray.devices[:] = [], []
    list(run_cells(cells, tmp_path / "b", executor="ray", fuse=False, **opts))
    assert [(d, o["num_gpus"]) for _, d, o in gpu_ray.submitted] == [("cpu", 0)] * 4
    assert gpu_ray.devices == ["cpu"] * 4

    # --device cuda:3 (default --cells-per-gpu 4): a quarter of a GPU each; the index is not
    # used, the task trains on its own GPU, found by its position in CUDA_VISIBLE_DEVICES
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,7")
    gpu_ray.submitted, gpu_ray.devices[:] = [], []
    list(run_cells(cells, tmp_path / "c", executor="ray", fuse=False, device="cuda:3", **opts))
    assert [(d, o["num_gpus"]) for _, d, o in gpu_ray.submitted] == [("cuda", 0.25)] * 4
    assert gpu_ray.devices == ["cuda:2"] * 4
    assert "ganbench: note: --device cuda:3 with --executor ray: Ray gives each task its GPU" \
        in capsys.readouterr().err


def test_cuda_on_a_cluster_without_gpus_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    ray = FakeRay(cpus=2, gpus=0)
    monkeypatch.setattr(ray_executor, "_import_ray", lambda: ray)
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=20))
    store = tmp_path / "s"
    for extra in ([], ["--dry-run"]):
        assert main(["run", "--grid", str(path), "--store", str(store), "--executor", "ray",
                     "--device", "cuda", *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "--device cuda with --executor ray, but the Ray " \
            "cluster has no GPU resources" in err, err
        assert not store.exists() and ray.submitted == []  # refused before anything ran
    # the API refuses it too, before submitting a task
    from bench.schedule.grid import load_grid

    with pytest.raises(ConfigError, match="no GPU resources"):
        list(run_cells(load_grid(str(path)).cells, tmp_path / "t", executor="ray",
                       device="cuda:0", progress=False))
    assert ray.submitted == []


def test_cuda_with_ray_is_checked_against_the_cluster_not_this_machine(tmp_path, monkeypatch,
                                                                      capsys):
    """This machine has no CUDA; a cluster with GPUs takes `--device cuda` (the dry run passes
    where the run would start)."""
    monkeypatch.setattr(ray_executor, "_import_ray", lambda: FakeRay(cpus=2, gpus=1))
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=20))
    assert main(["run", "--grid", str(path), "--store", str(tmp_path / "s"), "--executor", "ray",
                 "--device", "cuda", "--dry-run"]) == 0
    assert "on the GPU" in capsys.readouterr().out


def test_a_real_local_ray_gives_a_gpu_task_its_gpu_as_cuda_visible_devices():
    """Ray itself (declared GPUs, none real): a task asking for a share gets one GPU id and
    CUDA_VISIBLE_DEVICES set to it, so `task_device` says cuda:0; a task asking for none gets
    no id. What `_unit_task` relies on."""
    ray = pytest.importorskip("ray", reason="Ray is an optional extra")
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        @ray.remote
        def probe():
            import os

            from bench.schedule.ray_executor import task_device

            ids = ray.get_gpu_ids()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            return ids, visible, task_device(ids, visible) if ids else None

        _, share = _placement(_unit("digits"), 2, None, 2)
        _, none = _placement(_unit("ring8"), 2, None, 2)
        got = ray.get([probe.options(**share).remote() for _ in range(4)])
        alone = ray.get(probe.options(**none).remote())
    finally:
        ray.shutdown()
    for ids, visible, dev in got:
        assert len(ids) == 1 and visible == str(ids[0]) and dev == "cuda:0"
    assert {str(ids[0]) for ids, _, _ in got} <= {"0", "1"}
    assert alone[0] == [] and alone[2] is None


def test_the_dry_run_with_ray_does_not_name_gpu_indices(tmp_path, monkeypatch, capsys):
    """Ray, not the driver, picks each task's GPU: the dry run's placement says so."""
    monkeypatch.setattr(ray_executor, "_import_ray", lambda: FakeRay(cpus=2, gpus=2))
    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=20))
    assert main(["run", "--grid", str(path), "--store", str(tmp_path / "s"), "--executor", "ray",
                 "--device", "cuda:1", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "placement: 4 on a GPU Ray picks" in out and "cuda:" not in out
