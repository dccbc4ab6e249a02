"""Run cells as Ray tasks (`ganbench run --executor ray [--address ADDR]`), for clusters.

Each cell is one Ray task asking for `num_cpus=1` and, for an image cell when the cluster has
GPUs, a fraction `1 / cells_per_gpu` of a GPU (2-D cells ask for none and run on the CPU, as in
the local pool). The task runs `run_cell` against the same store as the local pool: it takes the
cell's lease, resumes from the cell's checkpoint, and writes the record in one transaction. So
the store path must be shared by every node (a network file system with working POSIX locks, at
the same path): the leases and the checkpoints that make a cell resumable on any node live there.
Sending records back to the driver instead would leave checkpoints on the node that happened to
train a cell, so an interrupted cell could not resume elsewhere, and two drivers could not see
each other's leases.

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
from bench.schedule.runner import STOP, failed_record, holders_record, store_failed
from bench.store import Store


BUSY_POLL_S = 2.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'ganbench[ray]'") from None
    return ray


def _cell_task(cell_json: dict, store_root: str, device: str, opts: dict) -> dict:
    """Runs on a Ray worker: one cell, lease-safe, into the shared store."""
    from bench.schedule.runner import CellBusy, run_cell

    cell = CellConfig.from_dict(cell_json)
    with Store(store_root) as store:
        try:
            record = run_cell(cell, store, device=device, progress=False, wait=False, **opts)
        except CellBusy as exc:
            return {"state": "busy", "owner": exc.lease.owner}
    return {"state": "stored" if record is not None else "stopped"}


def run_ray(todo: list[CellConfig], root: Path, *, address: str | None, device: str | None,
            cells_per_gpu: int | None, opts: dict) -> Iterator[Record]:

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
        gpus = int(ray.cluster_resources().get("GPU", 0))
        per_gpu = cells_per_gpu or 4
        task = ray.remote(_cell_task)
        queue = deque(todo)
        running: dict = {}
        deferred: list[tuple[CellConfig, float]] = []
        deaths: Counter[str] = Counter()
        with Store(root) as store:
            while queue or running or deferred:
                if STOP.is_set():
                    for ref in running:
                        ray.cancel(ref)
                    return
                now = time.monotonic()
                for item in [d for d in deferred if d[1] <= now]:
                    deferred.remove(item)
                    queue.append(item[0])
                while queue:
                    cell = queue.popleft()
                    image_on_gpu = gpus > 0 and device in (None, "auto", "cuda") and (
                        device == "cuda" or dataset_kind(cell.data.name) == "image")
                    dev = "cuda" if image_on_gpu else (device or "cpu")
                    options = {"num_cpus": 1, "num_gpus": 1 / per_gpu if image_on_gpu else 0}
                    ref = task.options(**options).remote(cell.to_dict(), str(root), dev, opts)
                    running[ref] = cell
                if not running:
                    time.sleep(0.2)
                    continue
                done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for ref in done:
                    cell = running.pop(ref)
                    try:
                        reply = ray.get(ref)
                    except Exception as exc:  # the task's worker or node died
                        deaths[cell.cell_id] += 1
                        if deaths[cell.cell_id] <= 1:
                            queue.append(cell)
                            continue
                        why = " ".join(str(exc).split())[:200]
                        yield store_failed(store, failed_record(
                            cell, f"Ray task failed twice: {type(exc).__name__}: {why}"))
                        continue
                    if reply["state"] == "stored":
                        yield store.get(cell.cell_id)
                    elif reply["state"] == "busy":
                        record = holders_record(store, cell.cell_id, opts.get("seen", {}))
                        if record is not None:
                            yield record
                        else:
                            deferred.append((cell, time.monotonic() + BUSY_POLL_S))
    finally:
        if started_here:
            ray.shutdown()
