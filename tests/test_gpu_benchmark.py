"""benchmarks/gpu.py runs on the CPU as a smoke test (the same code times a GPU)."""
import importlib

import torch


def load_gpu_benchmark():
    # imported by its module name, so spawned worker processes can import it too
    return importlib.import_module("benchmarks.gpu")


def test_gpu_benchmark_runs_on_the_cpu_with_tiny_settings(capsys):
    import json

    gpu = load_gpu_benchmark()
    # two workers at once: the multi-process path without paying for a second round of spawns
    assert gpu.main(["--device", "cpu", "--quick", "--cases", "2d", "--workers", "2",
                     "--steps", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    (row,) = result["overhead"]
    assert row["case"] == "2d" and row["harness_ms"] > 0 and row["plain_ms"] > 0
    assert abs(row["ratio"] - row["harness_ms"] / row["plain_ms"]) < 1e-9
    (shared,) = result["sharing"]
    assert shared["workers"] == 2 and shared["steps_per_s"] > 0
    assert shared["x_one_worker"] is None  # no 1-worker run to compare with


def test_the_32px_cell_times_on_data_of_its_shape():
    """Without the CIFAR-10 files the 32 px cell times on random data of the same shape."""
    gpu = load_gpu_benchmark()
    _, cell = gpu.CASES["32px"]
    data, synthetic = gpu.dataset_for(cell)
    assert data.shape == (3, 32, 32) and data.train.shape[1:] == (3, 32, 32)
    assert synthetic or data.name == "cifar10"
    assert gpu.harness_ms(cell, 1, "cpu", data, warmup=0) > 0
    assert gpu.plain_ms(cell, 1, "cpu", data, warmup=0) > 0
    assert torch.get_num_threads() >= 1
