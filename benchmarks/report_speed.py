"""`ganbench report`'s time, and what issue 17's two fixes buy, measured in one run (rounds
interleaved, median; the first round, which fills the reference-row cache, is not counted):

- grid members kept beside the table (`bench.store.results.Catalog`) instead of in `df.attrs`,
  which pandas deep-copies on every operation (the "before": the same report with the members,
  grid specs and stored ids put back into `df.attrs`);
- PNG only (the default) instead of PNG + PDF (`ganbench report --pdf`).

Stores: the 58-record synthetic store of the tests (grid memberships, curves and a sample file per
scored cell: sample sheets included), and the committed
`results/previous-default/records.jsonl` (290 records, no sample files) loaded into a temporary store with its cells as one add-one grid.

    python benchmarks/report_speed.py [--rounds 3] [--only synthetic|cpu-default]
"""
from __future__ import annotations

import argparse
import contextlib
import json
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


@contextlib.contextmanager
def members_in_attrs():
    """The old `load_records`: what the grids asked for rides in `df.attrs`."""
    real = build.load_table

    def load(*args, **kw):
        df, catalog = real(*args, **kw)
        df.attrs.update(grids=catalog.grids, members=catalog.members,
                        stored_ids=catalog.stored_ids)
        return df, catalog

    build.load_table = load
    try:
        yield
    finally:
        build.load_table = real


def one(store: Path, out: Path, *, pdf: bool, attrs: bool) -> float:
    ctx = members_in_attrs() if attrs else contextlib.nullcontext()
    with ctx:
        start = time.perf_counter()
        build.write_report(store, out, pdf=pdf)
        return time.perf_counter() - start


SETTINGS = {"now: PNG only, members beside the table": dict(pdf=False, attrs=False),
            "PNG + PDF (--pdf)": dict(pdf=True, attrs=False),
            "members in df.attrs": dict(pdf=False, attrs=True),
            "before: PNG + PDF, members in df.attrs": dict(pdf=True, attrs=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=("synthetic", "cpu-default"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        stores = {}
        if args.only in (None, "synthetic"):
            stores["synthetic (58 records)"] = synthetic_store(tmp / "synthetic")
        if args.only in (None, "cpu-default"):
            stores["cpu-default (290 records)"] = records_store(
                tmp / "cpu-default", ROOT / "results" / "cpu-default" / "records.jsonl",
                "cpu-default")
        for name, store in stores.items():
            times: dict[str, list[float]] = {k: [] for k in SETTINGS}
            one(store, tmp / "warm", pdf=False, attrs=False)  # fills the reference-row cache
            for i in range(args.rounds):
                for label, kw in SETTINGS.items():
                    times[label].append(one(store, tmp / f"r{i}", **kw))
            med = {k: statistics.median(v) for k, v in times.items()}
            now = med["now: PNG only, members beside the table"]
            print(f"{name}: report time, median of {args.rounds} rounds")
            for label, t in med.items():
                print(f"  {label:<42} {t:6.2f} s  ({t / now:.2f}x now)")


if __name__ == "__main__":
    main()
