"""`ganbench check`: is a store sound, and what can be repaired. Torch-free.

Checks, in order: SQLite's `integrity_check`; every record parses, its row id is 16 hex digits
and the hash of its config; every `done` cell has its final checkpoint and sample file, each with
the sha256 the store recorded; no stray temporaries (`*.tmp`) of killed writes; no lease held by
a process that is gone (or silent past the timeout).

`--repair` fixes what it safely can and says what it cannot:

- a damaged database: every readable row of every table is copied into a fresh database (row by
  row, so one bad page loses only the rows on it); invalid records go to its `set_aside` table;
  the old file (with its -wal / -shm) is kept beside it as `results.sqlite.damaged-<time>`;
- invalid records of a sound database move to `set_aside` (nothing is deleted);
- temporaries are removed; dead leases are released;
- a `done` cell whose final checkpoint is gone or does not match its digest is retired for
  retraining (its record stays in `retired` and joins the new record's history; a mismatched
  file is moved aside as `<name>.corrupt-<time>`); a missing or mismatched sample file with a
  sound checkpoint is rewritten by `ganbench samples`, which the check names.

A repair refuses to run while another process holds a live lease on the store.

The work is split by job: `checks` (one check per kind of problem), `repairs` (what --repair
does about each), `sql_rows` and `raw_pages` (reading what is left of a damaged database, through
SQL and straight from its pages), `findings` (the Report they fill) and `report_text` (what the
command prints). `check_store` below runs them in order.
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.schedule.store_check.checks import (TABLES, check_database, check_files,
                                               check_records, find_temporaries, lease_holders,
                                               stale_leases)
from bench.schedule.store_check.findings import Report
from bench.schedule.store_check.raw_pages import raw_cell_rows
from bench.schedule.store_check.repairs import (SET_ASIDE, name_resamples, rebuild,
                                                release_leases, remove_temporaries,
                                                retire_cells, set_aside)
from bench.schedule.store_check.report_text import as_json, summary

__all__ = ["Report", "TABLES", "SET_ASIDE", "check_store", "raw_cell_rows", "summary", "as_json"]


def check_store(root: str | os.PathLike, repair: bool = False) -> Report:
    root = Path(root)
    db_path = root / "results.sqlite"
    rep = Report()
    sound, tables = check_database(db_path, rep)
    leases, live = lease_holders(tables["leases"])
    if repair and live:
        rep.problem(f"{len(live)} cell(s) are being trained now (live leases, e.g. "
                    f"{sorted(live)[0]} by {leases[sorted(live)[0]][2]}): stop that run before "
                    f"repairing; nothing was changed")
        return rep
    invalid, records = check_records(tables["cells"], rep)
    retire, resample = check_files(root, records, tables["files"], rep)
    temps = find_temporaries(root, live, rep)
    dead = stale_leases(leases, live, rep)
    if not repair:
        return rep

    rep.problems = []  # from here on: what could not be repaired
    if not sound:
        rebuild(root, db_path, tables, invalid, rep)
    elif invalid:
        set_aside(db_path, tables["cells"], invalid, rep)
    remove_temporaries(temps, rep)
    if dead or retire:
        release_leases(db_path, dead, leases, rep)
    if retire:
        retire_cells(root, retire, rep)
    name_resamples(root, resample, rep)
    return rep
