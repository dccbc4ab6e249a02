"""The repairs of `ganbench check --repair`, each adding what it did (or could not do) to the
Report: rebuild a damaged database from every readable row, set invalid records aside, remove
temporaries, release dead leases, retire cells whose final checkpoint is lost, and name the
command that rewrites a lost sample file."""
from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

from bench.schedule.store_check.checks import record_problem
from bench.schedule.store_check.findings import Report
from bench.schedule.store_check.raw_pages import raw_cell_rows
from bench.store.db import SCHEMA, printable
from bench.store.integrity import FILES_SCHEMA

SET_ASIDE = """
CREATE TABLE IF NOT EXISTS set_aside (
    cell_id TEXT, reason TEXT NOT NULL, at REAL NOT NULL, record TEXT
);
"""


def set_aside(db_path: Path, cells: list[tuple], invalid: dict[int, str], rep: Report) -> None:
    db = sqlite3.connect(db_path, timeout=60)
    try:
        with db:
            db.execute(SET_ASIDE)
            for row in cells:
                if row[0] in invalid:
                    db.execute("INSERT INTO set_aside VALUES (?,?,?,?)",
                               (str(row[1]), invalid[row[0]], time.time(), str(row[7])))
                    db.execute("DELETE FROM cells WHERE rowid=?", (row[0],))
                    rep.repaired.append(f"set aside the invalid record {printable(repr(row[1]))} "
                                        f"(kept in the table set_aside)")
    finally:
        db.close()


def rebuild(root: Path, db_path: Path, tables: dict[str, list[tuple]], invalid: dict[int, str],
            rep: Report) -> None:
    """Every readable row into a fresh database; the damaged file kept beside it."""
    from bench.schedule.leases import SCHEMA as LEASES_SCHEMA

    # rows SQL could not reach, read from the pages themselves (kept when their record is valid)
    have = {row[1] for row in tables["cells"]}
    found = 0
    for values in raw_cell_rows(db_path):
        if values[0] not in have and record_problem(values[0], values[6]) is None:
            tables["cells"].append((-1 - found, *values))
            have.add(values[0])
            found += 1
    if found:
        rep.repaired.append(f"read {found} record(s) SQL could not reach straight from the "
                            f"pages of {db_path}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    fresh = root / f"results.sqlite.repair-{stamp}.tmp"
    fresh.unlink(missing_ok=True)
    db = sqlite3.connect(fresh)
    counts = {}
    try:
        db.executescript(SCHEMA + FILES_SCHEMA + LEASES_SCHEMA + SET_ASIDE)
        with db:
            for table, rows in tables.items():
                n = 0
                for row in rows:
                    if table == "cells" and row[0] in invalid:
                        db.execute("INSERT INTO set_aside VALUES (?,?,?,?)",
                                   (str(row[1]), invalid[row[0]], time.time(), str(row[7])))
                        continue
                    values = row[1:]
                    try:
                        db.execute(f"INSERT OR IGNORE INTO {table} VALUES "
                                   f"({','.join('?' * len(values))})", values)
                        n += 1
                    except sqlite3.Error as exc:
                        rep.problem(f"{table} row {row[0]} not copied: {exc}")
                counts[table] = n
        db.execute("PRAGMA journal_mode=WAL")
    finally:
        db.close()
    aside = root / f"results.sqlite.damaged-{stamp}"
    for suffix in ("", "-wal", "-shm"):
        old = Path(str(db_path) + suffix)
        if old.exists():
            os.replace(old, Path(str(aside) + suffix))
    os.replace(fresh, db_path)
    rep.repaired.append(f"rebuilt {db_path} from every readable row ({counts.get('cells', 0)} "
                        f"record(s), {sum(counts.values())} rows in all); the damaged file is "
                        f"kept as {aside}")
    if invalid:
        rep.repaired.append(f"set aside {len(invalid)} invalid record(s) (table set_aside)")


def remove_temporaries(temps: list[Path], rep: Report) -> None:
    for p in temps:
        try:
            p.unlink()
            rep.repaired.append(f"removed {p}")
        except OSError as exc:
            rep.problem(f"cannot remove {p}: {exc.strerror or exc}")


def release_leases(db_path: Path, dead: list[str], leases: dict[str, tuple], rep: Report) -> None:
    db = sqlite3.connect(db_path, timeout=60)
    try:
        with db:
            for cid in dead:
                db.execute("UPDATE leases SET owner=NULL WHERE cell_id=? AND owner=?",
                           (cid, leases[cid][2]))
                rep.repaired.append(f"released the stale lease on cell {cid}")
    finally:
        db.close()


def retire_cells(root: Path, retire: dict[str, str], rep: Report) -> None:
    """Each cell for retraining (its record joins the new record's history); a final checkpoint
    that is there but does not match is moved aside as `checkpoint.pt.corrupt-<time>`."""
    from bench.store.db import Store

    with Store(root) as store:
        for cid, why in retire.items():
            path = store.cell_dir(cid) / "checkpoint.pt"
            if path.exists():
                aside = path.with_name(f"checkpoint.pt.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
                os.replace(path, aside)
            store.retire(cid, f"repair: {why}")
            rep.repaired.append(f"cell {cid} will be trained again ({why}; its record is "
                                f"kept in its history)")


def name_resamples(root: Path, resample: dict[str, str], rep: Report) -> None:
    """A lost sample file is not repaired here: a problem that names the command that is."""
    for cid, why in resample.items():
        rep.problem(f"cell {cid}: {why}; not repaired here: rewrite it with `ganbench samples "
                    f"--store {root} --cell {cid}`")
