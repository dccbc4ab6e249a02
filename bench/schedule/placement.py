"""Where each cell runs: a pure function of the cell's data kind, the visible GPUs, the device
option and how many cells already run on each GPU, so it is tested on a CPU with fake GPU counts.

Defaults: without a GPU everything runs on the CPU. With GPUs, image cells share them round-robin
(least loaded first, at most `cells_per_gpu` at a time on each) and 2-D cells stay on CPU workers:
a tiny MLP step is launch-bound on a GPU (12 ms there vs 4 ms on one CPU core, see issue 8).
`--device` overrides: `cpu` puts everything on the CPU; `cuda` puts every cell on the GPUs;
`cuda:N` pins every cell to one GPU.
"""
from __future__ import annotations

import os


def visible_gpus() -> int:
    """GPUs torch sees here (0 without CUDA, or with a broken driver)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:  # a broken driver is no GPU
        return 0


def default_workers(gpus: int, cores: int | None = None) -> int:
    """About one worker per core, at most 8. With GPUs the same: several cells share a GPU, and
    2-D cells keep the CPU cores busy meanwhile."""
    cores = cores if cores is not None else (os.cpu_count() or 1)
    return max(1, min(cores, 8))


def default_cells_per_gpu(workers: int, gpus: int) -> int:
    return max(1, -(-workers // max(gpus, 1)))


def choose_device(kind: str, *, gpus: int, device: str | None, gpu_load: list[int],
                  cells_per_gpu: int) -> str | None:
    """The device for a cell of data `kind` ('2d' or 'image') now, or None when every GPU it may
    use is full (the scheduler tries again when a cell ends). `gpu_load[i]` = cells running on
    GPU i."""
    if device not in (None, "auto"):
        if device == "cuda" and gpus > 0:
            return _least_loaded(gpu_load, gpus, cells_per_gpu)
        return device
    if gpus == 0 or kind == "2d":
        return "cpu"
    return _least_loaded(gpu_load, gpus, cells_per_gpu)


def _least_loaded(gpu_load: list[int], gpus: int, cells_per_gpu: int) -> str | None:
    load = (list(gpu_load) + [0] * gpus)[:gpus]
    best = min(range(gpus), key=lambda i: (load[i], i))
    return f"cuda:{best}" if load[best] < cells_per_gpu else None


def plan(kinds: list[str], *, gpus: int, device: str | None, cells_per_gpu: int) -> list[str]:
    """Static round-robin plan (all cells started at once, none finishing): the device each cell
    would get, for --dry-run and tests. A cell that would have to wait gets its GPU anyway."""
    load = [0] * gpus
    out = []
    for kind in kinds:
        dev = choose_device(kind, gpus=gpus, device=device, gpu_load=load,
                            cells_per_gpu=10**9)
        if dev and dev.startswith("cuda:"):
            load[int(dev.split(":")[1])] += 1
        out.append(dev)
    return out


def gpu_index(device: str | None) -> int | None:
    if device and device.startswith("cuda:"):
        return int(device.split(":")[1])
    return None
