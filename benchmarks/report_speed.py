"""`ganbench report`'s time against issue 17's targets: <= 10 s on a ~60-record store and <= 60 s
on the reference store, sample sheets and a PDF beside every PNG included (the defaults).

Each setting runs `rounds` times, interleaved, after one warm-up report (it fills the reference-
row cache); the median wall time is printed with the CPU seconds it took (this process plus its
figure workers), and the load average before and after, since a busy machine stretches the wall
time but hardly the CPU time. Settings: the default (PNG + PDF, figures drawn by
`bench.report.build.default_workers()` processes), PNG only (`--no-pdf`), and all in one process
(`--workers 1`).

Stores: the 58-record synthetic store of the tests (grid memberships, curves and a sample file
per scored cell), and the reference store: `--store DIR` (copied to a temporary folder first,
so nothing is written beside it; e.g. a store made by `make run`), else the committed
`results/cpu-default/records.jsonl` loaded into a temporary store as one add-one grid (no sample
files there, so no sample sheets: say --store for the real figure).

    python benchmarks/report_speed.py [--rounds 3] [--only synthetic|reference] [--store DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.core.record import Record  # noqa: E402
from bench.report import build  # noqa: E402
from bench.store import Store  # noqa: E402

TARGETS = {"synthetic": 10.0, "reference": 60.0}  # seconds, issue 17


def synthetic_store(root: Path) -> Path:
    from tests.synthetic_store import build as build_synthetic

    build_synthetic(root).store.close()
    return root


def records_store(root: Path, jsonl: Path, grid: str) -> Path:
    members = []
    with Store(root) as store:
        for line in jsonl.read_text().splitlines():
            r = Record(**json.loads(line))
            store.put(r)
            tricks = [t["name"] for t in r.config.get("tricks", [])]
            members.append({"design": "add-one", "dataset": r.dataset, "cell_id": r.cell_id,
                            "variant_id": r.variant_id,
                            "info": {"label": r.label, "tricks": tricks,
                                     "role": "variant" if tricks else "baseline"}})
        store.put_grid(grid, {"description": "committed records"}, members)
    return root


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def one(store: Path, out: Path, **kw) -> tuple[float, float, build.Report]:
    """(wall s, CPU s of this process and its figure workers, the report)."""
    wall, cpu, kids = time.perf_counter(), time.process_time(), _children_cpu()
    report = build.write_report(store, out, image_references=True, **kw)
    return (time.perf_counter() - wall,
            time.process_time() - cpu + _children_cpu() - kids, report)


def settings() -> dict[str, dict]:
    n = build.default_workers()
    return {f"default: PNG + PDF, {n} figure process(es)": {},
            "PNG only (--no-pdf)": dict(pdf=False),
            "PNG + PDF, one process (--workers 1)": dict(workers=1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("synthetic", "reference"))
    ap.add_argument("--store", type=Path, help="the reference store (copied first)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stores = {}
        if args.only in (None, "synthetic"):
            stores["synthetic"] = synthetic_store(tmp / "synthetic")
        if args.only in (None, "reference"):
            if args.store:
                stores["reference"] = Path(shutil.copytree(args.store, tmp / "reference"))
            else:
                stores["reference"] = records_store(
                    tmp / "reference", ROOT / "results" / "cpu-default" / "records.jsonl",
                    "cpu-default")
        for kind, store in stores.items():
            load = os.getloadavg()
            _, _, rep = one(store, tmp / "warm")  # fills the reference-row cache
            cells = rep.df["cell_id"].nunique()
            times = {k: [] for k in settings()}
            for i in range(args.rounds):
                for label, kw in settings().items():
                    wall, cpu, _ = one(store, tmp / f"r{i}", **kw)
                    times[label].append((wall, cpu))
            print(f"{kind} store ({cells} records, {len(rep.figures)} figures, "
                  f"{len(rep.samples)} sample sheets, each with a PDF by default): median of "
                  f"{args.rounds} rounds; load average {load[0]:.1f} before, "
                  f"{os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs")
            for label, runs in times.items():
                wall = statistics.median(w for w, _ in runs)
                cpu = statistics.median(c for _, c in runs)
                print(f"  {label:<40} {wall:6.1f} s wall  {cpu:6.1f} s CPU")
            default = statistics.median(w for w, _ in next(iter(times.values())))
            target = TARGETS[kind]
            print(f"  target <= {target:.0f} s: {'met' if default <= target else 'NOT met'} "
                  f"({default:.1f} s)")


if __name__ == "__main__":
    main()
