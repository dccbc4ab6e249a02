"""Run cells as Ray tasks (`ganbench run --executor ray [--address ADDR]`), for clusters.

Ray gets the units the local pool gets (`work_units`, bench/schedule/fused/plan.py): each fused
group (cells equal but for seed and learning rates, docs/fused.md) is one Ray task, every other
cell one task; the groups are split over the cluster's CPUs as the pool splits them over its
workers (and go to a GPU whole where the cluster has GPUs). `--no-fuse` makes every cell its own
task.

GPUs (`_placement`, `task_device`): a task asks for `num_cpus=1` and, when it trains on a GPU, a
fraction `1 / cells_per_gpu` of one (`--cells-per-gpu N`, default 4), so Ray reserves it: no more
than N tasks share a GPU and none lands on a node without one. A task trains on a GPU when the
cluster has GPUs and `--device` is `cuda` / `cuda:N` (every unit), or `auto` for an image cell or
a fused group (2-D cells alone ask for no GPU and run on the CPU, as in the local pool). The
driver does not pick the GPU: Ray does, and sets the task's CUDA_VISIBLE_DEVICES to it, so inside
the task its GPU is `cuda:0` (`task_device` reads `ray.get_gpu_ids()` against
CUDA_VISIBLE_DEVICES, which also covers RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES); the index
of `--device cuda:N` is therefore not used (one line says so). A CUDA `--device` on a cluster
without GPU resources is refused before anything is submitted (`check_cluster_device`, one line,
exit 2; `ganbench run` checks it before writing to the store, and so does its --dry-run);
`--device cpu` and CPU units ask for no GPU.

A task runs `run_unit` (bench/schedule/units.py: `run_cell`, or `run_fused_group` for a group)
against the same store as the local pool: it takes each cell's lease, resumes each cell from its
checkpoint, and writes each cell's record in one transaction; its reply is read by the pool's
rules (a group's cells left to run alone become single-cell tasks; a task that died is retried
once, each cell from its checkpoint, then its unstored cells are stored `failed`). So the store
path must be shared by every node (a network file system with working POSIX locks, at the same
path): the leases and the checkpoints that make a cell resumable on any node live there. Sending
records back to the driver instead would leave checkpoints on the node that happened to train a
cell, so an interrupted cell could not resume elsewhere, and two drivers could not see each
other's leases.

Ray is an optional extra: `pip install ganbench[ray]`.
"""
from __future__ import annotations

import os
import sys
from collections import Counter, deque
from pathlib import Path
from typing import Iterator

from bench.core.config import CellConfig, ConfigError
from bench.core.record import Record
from bench.data import dataset_kind
from bench.schedule.fused.plan import FusedGroup, work_units
from bench.schedule.runner import STOP
from bench.schedule.units import (Death, collect_deferred, payload, settle_cell,
                                  settle_group)
from bench.store import Store

BUSY_POLL_S = 2.0
DEFAULT_CELLS_PER_GPU = 4


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'ganbench[ray]'") from None
    return ray


def _unit_task(unit_json: dict, store_root: str, device: str, opts: dict) -> dict:
    """Runs on a Ray worker: one cell or fused group, lease-safe, into the shared store."""
    from bench.schedule.units import run_unit

    if device.startswith("cuda"):  # the GPU Ray reserved for this task, as torch numbers it here
        import ray

        device = task_device(ray.get_gpu_ids(), os.environ.get("CUDA_VISIBLE_DEVICES"))
    with Store(store_root) as store:
        return run_unit(unit_json, store, device, opts)


def cluster_size(ray) -> tuple[int, int]:
    """(CPUs, GPUs) of the Ray cluster this process is connected to."""
    res = ray.cluster_resources()
    return max(1, int(res.get("CPU", 1))), int(res.get("GPU", 0))


def expected_cluster_size(address: str | None) -> tuple[int, int]:
    """(CPUs, GPUs) a run with `--executor ray` would get, for `--dry-run`: the connected
    cluster's when Ray is initialised here; the cluster at `address` (connected to, read and
    left); else what a local Ray started by the run would have (Ray's CPU count, the GPUs
    torch sees)."""
    ray = _import_ray()
    if ray.is_initialized():
        return cluster_size(ray)
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        try:
            return cluster_size(ray)
        finally:
            ray.shutdown()
    try:
        from ray._private.utils import get_num_cpus  # what ray.init() would take

        cpus = int(get_num_cpus())
    except Exception:
        cpus = os.cpu_count() or 1
    from bench.schedule.placement import visible_gpus

    return max(1, cpus), visible_gpus()


def ray_units(todo: list[CellConfig], *, cpus: int, gpus: int, device: str | None,
              fuse: bool | None):
    """The units Ray runs (one task each) and the plan: the pool's rules with the cluster's
    CPUs as its workers."""
    return work_units(todo, workers=cpus, device=device, gpus=gpus, fuse=fuse)


def _placement(unit, gpus: int, device: str | None, per_gpu: int) -> tuple[str, dict]:
    """(device string for the task, Ray resource options). A unit on a GPU asks Ray for
    `1 / per_gpu` of one and is told "cuda": the task resolves it to the GPU Ray gave it
    (`task_device`). A fused group goes where image cells go (fused_plan.group_device)."""
    cuda_asked = str(device).startswith("cuda")
    on_gpu = gpus > 0 and (cuda_asked or device in (None, "auto") and (
        isinstance(unit, FusedGroup) or dataset_kind(unit.data.name) == "image"))
    if on_gpu:
        return "cuda", {"num_cpus": 1, "num_gpus": 1 / per_gpu}
    check_cluster_device(device, gpus, None)  # run_ray refuses it before submitting anything
    return ("cpu" if device in (None, "auto") else device), {"num_cpus": 1, "num_gpus": 0}


def no_gpu_message(device: str, address: str | None) -> str:
    where = f"the Ray cluster at {address}" if address else "the Ray cluster"
    return (f"--device {device} with --executor ray, but {where} has no GPU resources "
            f"(ray.cluster_resources() lists no 'GPU'): start its nodes with GPUs, or use "
            f"--device auto or cpu")


def check_cluster_device(device: str | None, gpus: int, address: str | None) -> None:
    """Refuse a CUDA `--device` on a cluster without GPUs (ConfigError: one line, exit 2)."""
    if str(device).startswith("cuda") and gpus <= 0:
        raise ConfigError(no_gpu_message(str(device), address))


def _note_gpu_index(device: str | None) -> None:
    if str(device).startswith("cuda:"):
        print(f"ganbench: note: --device {device} with --executor ray: Ray gives each task its "
              f"GPU (a 1/N share, --cells-per-gpu N), so the index is not used; the tasks run "
              f"as with --device cuda", file=sys.stderr, flush=True)


def task_device(gpu_ids: list, visible: str | None) -> str:
    """Inside a Ray task: the torch device of the GPU Ray gave it (`ray.get_gpu_ids()`). Ray sets
    CUDA_VISIBLE_DEVICES to the task's GPU ids, so that is `cuda:0`; where the variable lists
    more GPUs (RAY_EXPERIMENTAL_NOSET_CUDA_VISIBLE_DEVICES=1 leaves the node's list) it is the
    task's GPU's position in it; without the variable, the GPU's id."""
    if not gpu_ids:
        raise RuntimeError("this Ray task asked for a GPU but Ray gave it none "
                           "(ray.get_gpu_ids() is empty)")
    mine = str(gpu_ids[0])
    if visible is not None and visible.strip():
        listed = [v.strip() for v in visible.split(",")]
        if mine in listed:
            return f"cuda:{listed.index(mine)}"
    try:
        return f"cuda:{int(mine)}"
    except ValueError:
        raise RuntimeError(f"Ray gave this task GPU {mine!r}, which CUDA_VISIBLE_DEVICES="
                           f"{visible!r} does not list") from None


def _failure(exc: Exception) -> Death:
    why = " ".join(str(exc).split())[:200]
    text = f"Ray task failed: {type(exc).__name__}: {why}"
    return Death(text, text)


def run_ray(todo: list[CellConfig], root: Path, *, address: str | None, device: str | None,
            cells_per_gpu: int | None, opts: dict, fuse: bool | None = None
            ) -> Iterator[Record]:
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        # tasks import this checkout's `bench` even where it is not installed (a local run)
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH", "")) if p)}
        for key in ("GANBENCH_DATA", "GANBENCH_CACHE", "GANBENCH_CELL_THREADS",
                    "GANBENCH_LEASE_TIMEOUT", "GANBENCH_TENSORBOARD"):
            if key in os.environ:
                env[key] = os.environ[key]
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
    try:
        cpus, gpus = cluster_size(ray)
        check_cluster_device(device, gpus, address)
        _note_gpu_index(device)
        units, _ = ray_units(todo, cpus=cpus, gpus=gpus, device=device, fuse=fuse)
        per_gpu = cells_per_gpu or DEFAULT_CELLS_PER_GPU
        task = ray.remote(_unit_task)
        queue: deque = deque(units)
        running: dict = {}
        deferred: dict[str, tuple[CellConfig, float]] = {}
        deaths: Counter[str] = Counter()
        seen = opts.get("seen", {})
        with Store(root) as store:
            while queue or running or deferred:
                if STOP.is_set():
                    for ref in running:
                        ray.cancel(ref)
                    return
                if not queue and deferred:
                    yield from collect_deferred(store, deferred, queue, seen)
                while queue:
                    unit = queue.popleft()
                    dev, options = _placement(unit, gpus, device, per_gpu)
                    ref = task.options(**options).remote(payload(unit), str(root), dev, opts)
                    running[ref] = unit
                if not running:
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    unit = running.pop(ref)
                    death = reply = None
                    try:
                        reply = ray.get(ref)
                    except Exception as exc:  # the task's worker or node died
                        death = _failure(exc)
                    if isinstance(unit, FusedGroup):
                        yield from settle_group(unit, reply, store, death=death, deaths=deaths,
                                                queue=queue, seen=seen)
                        continue
                    record = settle_cell(unit, reply, store, death=death, deferred=deferred,
                                         deaths=deaths, queue=queue, busy_poll_s=BUSY_POLL_S)
                    if record is not None:
                        yield record
    finally:
        if started_here:
            ray.shutdown()
