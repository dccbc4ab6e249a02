"""Run cells as Ray tasks (`ganbench run --executor ray [--address ADDR]`), for clusters.

Ray gets the units the local pool gets (`work_units`, bench/schedule/fused_plan.py): each fused
group (cells equal but for seed and learning rates, docs/fused.md) is one Ray task, every other
cell one task; the groups are split over the cluster's CPUs as the pool splits them over its
workers (and go to a GPU whole where the cluster has GPUs). `--no-fuse` makes every cell its own
task. A task asks for `num_cpus=1` and, for an image cell or a fused group when the cluster has
GPUs, a fraction `1 / cells_per_gpu` of a GPU (2-D cells alone ask for none and run on the CPU,
as in the local pool).

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
import time
from collections import Counter, deque
from pathlib import Path
from typing import Iterator

from bench.core.config import CellConfig, ConfigError
from bench.core.record import Record
from bench.data import dataset_kind
from bench.schedule.fused_plan import FusedGroup, work_units
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
    """(device string for the task, Ray resource options)."""
    # a fused group goes where image cells go (fused_plan.group_device); `cuda:N` is passed
    # through as it is for a cell alone
    on_gpu = gpus > 0 and device in (None, "auto", "cuda") and (
        device == "cuda" or isinstance(unit, FusedGroup)
        or dataset_kind(unit.data.name) == "image")
    if on_gpu:  # Ray sets CUDA_VISIBLE_DEVICES to the task's GPU: it is the task's "cuda"
        return "cuda", {"num_cpus": 1, "num_gpus": 1 / per_gpu}
    if isinstance(unit, FusedGroup) and device in (None, "auto"):
        return "cpu", {"num_cpus": 1, "num_gpus": 0}
    return device or "cpu", {"num_cpus": 1, "num_gpus": 0}


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
                    "GANBENCH_LEASE_TIMEOUT"):
            if key in os.environ:
                env[key] = os.environ[key]
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})
    try:
        cpus, gpus = cluster_size(ray)
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
