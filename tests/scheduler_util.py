"""Helpers of the scheduler tests: a tiny grid, the CLI as a subprocess, lease counts."""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# ring8, 2 variants x 2 seeds; {steps} is filled in per test
TINY_GRID = """
description = "scheduler test grid"
design = "add-one"
tricks = ["label_smoothing"]
seeds = [0, 1]

[[data]]
name = "ring8"
steps = {steps}
batch_size = 32
width = 16
checkpoint_every = 20
log_every = 10
"""


def cli_cmd(*args: str) -> list[str]:
    """`ganbench ARGS` in a fresh interpreter, importing this checkout."""
    code = ("import sys; sys.path.insert(0, %r); from bench.cli import main; "
            "sys.exit(main(sys.argv[1:]))" % str(ROOT))
    return [sys.executable, "-c", code, *args]


def lease_attempts(store: Path) -> dict[str, int]:
    with sqlite3.connect(Path(store) / "results.sqlite") as db:
        return dict(db.execute("SELECT cell_id, attempts FROM leases").fetchall())


def lease_owners(store: Path) -> list[str]:
    with sqlite3.connect(Path(store) / "results.sqlite") as db:
        return [o for (o,) in db.execute("SELECT owner FROM leases WHERE owner IS NOT NULL")]


def leased_cells(store: Path, owner: str | None = None) -> set[str]:
    """Cells whose lease is held now (by `owner`, or by anyone): with fused groups a worker
    holds one lease per cell of its group."""
    with sqlite3.connect(Path(store) / "results.sqlite") as db:
        rows = db.execute("SELECT cell_id, owner FROM leases WHERE owner IS NOT NULL").fetchall()
    return {c for c, o in rows if owner is None or o == owner}


def wait_for(predicate, timeout: float = 120.0) -> bool:
    """Poll `predicate` (an exception counts as not yet) until true or `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception:
            pass
        time.sleep(0.05)
    return False
