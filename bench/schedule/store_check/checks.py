"""The checks of `ganbench check`, one per kind of problem, each adding what it finds to the
Report and returning what a repair needs: the database (integrity, unreadable rows), the records
(each parses, its id is 16 hex digits and its config's hash), the files of done cells (present,
with their recorded sha256), stray temporaries of killed writes, and leases (live, or held by a
process that is gone)."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from bench.schedule.store_check.findings import Report
from bench.schedule.store_check.sql_rows import readable_rows
from bench.store.db import CELL_ID
from bench.store.integrity import sha256_file

TABLES = ("cells", "grids", "members", "retired", "files", "leases")


def check_database(db_path: Path, rep: Report) -> tuple[bool, dict[str, list[tuple]]]:
    """SQLite's integrity check, and every readable row of every table: (sound, {table: rows});
    not sound when the check fails or any row could not be read (a repair rebuilds then)."""
    db = sqlite3.connect(f"{db_path.absolute().as_uri()}?mode=ro", uri=True, timeout=60)
    try:
        try:
            integrity = [r[0] for r in db.execute("PRAGMA integrity_check(20)").fetchall()]
        except sqlite3.DatabaseError as exc:
            integrity = [str(exc)]
        sound = integrity == ["ok"]
        if not sound:
            rep.problem(f"database {db_path}: " + "; ".join(integrity[:3])
                        + (f" (+{len(integrity) - 3} more)" if len(integrity) > 3 else ""))
        tables: dict[str, list[tuple]] = {}
        for table in TABLES:
            rows, errors = readable_rows(db, table)
            tables[table] = rows
            for e in errors:
                if "no such table" not in e:
                    sound = False
                    rep.problem(f"database {db_path}: {e}")
    finally:
        db.close()
    return sound, tables


def lease_holders(lease_rows: list[tuple]) -> tuple[dict[str, tuple], set[str]]:
    """The lease rows by cell id ((rowid, cell, owner, heartbeat, attempts)), and the cells whose
    owner is alive (being trained now)."""
    leases = {r[1]: r for r in lease_rows}  # cell_id -> (rowid, cell, owner, hb, att)
    live = {cid for cid, r in leases.items() if r[2] and lease_live(r[2], r[3])}
    return leases, live


def check_records(cell_rows: list[tuple], rep: Report) -> tuple[dict[int, str], dict[str, dict]]:
    """Every `cells` row: (why each invalid one is invalid, by rowid; {cell_id: status} of the
    valid ones)."""
    invalid: dict[int, str] = {}
    records: dict[str, dict] = {}
    for row in cell_rows:
        rowid, cell_id, text, status = row[0], row[1], row[7], row[6]
        why = record_problem(cell_id, text)
        if why:
            invalid[rowid] = why
            rep.problem(f"invalid record: {why}")
        else:
            records[cell_id] = {"status": status}
    rep.notes.append(f"{len(cell_rows)} record(s) read, {len(invalid)} invalid")
    return invalid, records


def check_files(root: Path, records: dict[str, dict], file_rows: list[tuple],
                rep: Report) -> tuple[dict[str, str], dict[str, str]]:
    """The final checkpoint and sample file of every done cell: (cells to retire, cells whose
    sample file to rewrite), each with why."""
    digests = {(r[1], r[2]): (r[3], r[4]) for r in file_rows}
    retire: dict[str, str] = {}
    resample: dict[str, str] = {}
    for cell_id, info in records.items():
        if info["status"] != "done":
            continue
        folder = root / "cells" / cell_id
        why = digest_problem(folder / "checkpoint.pt", digests.get((cell_id, "checkpoint.pt")))
        if why:
            retire[cell_id] = f"final checkpoint {folder / 'checkpoint.pt'} {why}"
            rep.problem(f"cell {cell_id}: {retire[cell_id]}")
            continue
        for name in ("samples.npz",):
            why = digest_problem(folder / name, digests.get((cell_id, name)))
            if why:
                resample[cell_id] = f"sample file {folder / name} {why}"
                rep.problem(f"cell {cell_id}: {resample[cell_id]}")
    return retire, resample


def find_temporaries(root: Path, live: set[str], rep: Report) -> list[Path]:
    """Temporaries of killed writes (not in cells being trained now)."""
    temps = []
    cells_dir = root / "cells"
    if cells_dir.is_dir():
        for folder in sorted(cells_dir.iterdir()):
            if not folder.is_dir() or folder.name in live:
                continue
            temps += [p for p in folder.iterdir()
                      if p.name.endswith(".tmp") or ".tmp." in p.name]
    for p in temps:
        rep.problem(f"stray temporary {p} ({p.stat().st_size} bytes) of a killed write")
    return temps


def stale_leases(leases: dict[str, tuple], live: set[str], rep: Report) -> list[str]:
    """Cells whose lease is held by a process that is gone (or silent past the timeout)."""
    dead = sorted(cid for cid, r in leases.items() if r[2] and cid not in live)
    for cid in dead:
        rep.problem(f"stale lease on cell {cid}: held by {leases[cid][2]}, which is gone or "
                    f"silent past the timeout")
    return dead


def record_problem(cell_id: object, text: object) -> str | None:
    """Why a `cells` row is not a usable record, or None."""
    from bench.core.config import CellConfig, ConfigError
    from bench.core.record import Record

    if not isinstance(cell_id, str) or not CELL_ID.fullmatch(cell_id):
        return f"cell id {cell_id!r} is not 16 hex digits"
    try:
        record = Record.from_json(text)
        cell = CellConfig.from_dict(record.config)
    except (ValueError, TypeError, KeyError, AttributeError, ConfigError) as exc:
        return f"cell {cell_id}: record does not parse ({type(exc).__name__}: " \
               f"{' '.join(str(exc).split())[:120]})"
    if record.cell_id != cell_id:
        return f"cell {cell_id}: the row holds a record of cell {record.cell_id!r}"
    if cell.cell_id != cell_id:
        return f"cell {cell_id}: its config hashes to {cell.cell_id}"
    return None


def digest_problem(path: Path, row: tuple | None) -> str | None:
    if not path.is_file():
        return "is missing"
    if row is None:
        return None  # written before digests: nothing to compare
    try:
        got = sha256_file(path)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if got not in (row[0], row[1]):
        return f"does not match its recorded sha256 ({got[:12]}… vs {row[0][:12]}…)"
    return None


def lease_live(owner: str, heartbeat: float) -> bool:
    from bench.schedule.leases import lease_timeout, owner_alive

    return owner_alive(owner, heartbeat, time.time(), lease_timeout())
