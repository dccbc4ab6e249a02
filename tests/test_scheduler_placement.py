"""GPU placement as a pure function, tested on the CPU with fake GPU counts."""
from bench.schedule.placement import (choose_device, default_cells_per_gpu, default_workers, plan)


def test_without_gpus_everything_runs_on_the_cpu():
    assert plan(["2d", "image", "image"], gpus=0, device=None, cells_per_gpu=1) == ["cpu"] * 3


def test_image_cells_share_gpus_round_robin_and_2d_cells_stay_on_the_cpu():
    kinds = ["image", "2d", "image", "image", "2d", "image"]
    assert plan(kinds, gpus=2, device=None, cells_per_gpu=4) == [
        "cuda:0", "cpu", "cuda:1", "cuda:0", "cpu", "cuda:1"]


def test_device_option_overrides():
    kinds = ["2d", "image", "2d"]
    assert plan(kinds, gpus=2, device="cpu", cells_per_gpu=1) == ["cpu"] * 3
    assert plan(kinds, gpus=2, device="cuda", cells_per_gpu=1) == ["cuda:0", "cuda:1", "cuda:0"]
    assert plan(kinds, gpus=2, device="cuda:1", cells_per_gpu=1) == ["cuda:1"] * 3


def test_cells_per_gpu_caps_what_runs_at_once_on_each_gpu():
    # two GPUs, two cells each: the fifth image cell waits (None) until one ends
    load = [2, 1]
    assert choose_device("image", gpus=2, device=None, gpu_load=load, cells_per_gpu=2) == "cuda:1"
    assert choose_device("image", gpus=2, device=None, gpu_load=[2, 2],
                         cells_per_gpu=2) is None
    assert choose_device("2d", gpus=2, device=None, gpu_load=[2, 2], cells_per_gpu=2) == "cpu"


def test_default_workers_and_cells_per_gpu():
    assert default_workers(gpus=1, cores=16) == 8  # several workers share the GPU
    assert default_workers(gpus=0, cores=2) == 2
    assert default_cells_per_gpu(workers=8, gpus=1) == 8
    assert default_cells_per_gpu(workers=8, gpus=3) == 3


class FakeWorker:
    def __init__(self):
        self.cell = self.device = None

    def send(self, cell, device):
        self.cell, self.device = cell, device


def test_the_pool_dispatcher_follows_the_placement_and_the_per_gpu_cap():
    from collections import deque

    from bench.schedule.executor import _dispatch
    from tests.tiny import tiny_cell

    images = [tiny_cell("digits", seed=s) for s in range(3)]
    flat = tiny_cell("ring8")
    queue = deque(images + [flat])
    pool = [FakeWorker() for _ in range(4)]
    _dispatch(pool, queue, gpus=1, device=None, per_gpu=2)
    placed = {w.cell.cell_id: w.device for w in pool if w.cell is not None}
    # two image cells share the GPU, the 2-D cell takes a CPU worker, the third image waits
    assert placed == {images[0].cell_id: "cuda:0", images[1].cell_id: "cuda:0",
                      flat.cell_id: "cpu"}
    assert list(queue) == [images[2]]
    pool[0].cell = None  # an image cell ends: the waiting one gets the GPU
    _dispatch(pool, queue, gpus=1, device=None, per_gpu=2)
    assert pool[0].cell is images[2] and pool[0].device == "cuda:0" and not queue


def test_train_with_device_auto_places_a_cell_like_run(monkeypatch):
    import torch

    from bench.cli.cmd_train import _device_for
    from bench.core.config import CellConfig, DataConfig

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _device_for(CellConfig(data=DataConfig("ring8")), None) == "cpu"
    assert _device_for(CellConfig(data=DataConfig("digits")), None) == "cuda:0"
    assert _device_for(CellConfig(data=DataConfig("ring8")), "cuda:1") == "cuda:1"
