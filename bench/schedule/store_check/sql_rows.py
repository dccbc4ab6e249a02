"""Reading a possibly damaged store database through SQL: every row that can still be read."""
from __future__ import annotations

import sqlite3


def readable_rows(db: sqlite3.Connection, table: str) -> tuple[list[tuple], list[str]]:
    """Every readable row of `table` (with its rowid first), and what could not be read: a full
    scan first, then each rowid the scan did not reach, one at a time."""
    got: dict[int, tuple] = {}
    errors: list[str] = []
    try:
        cur = db.execute(f"SELECT rowid, * FROM {table} NOT INDEXED")
        while True:
            try:
                row = cur.fetchone()
            except sqlite3.DatabaseError as exc:
                errors.append(f"{table}: scan stopped: {exc}")
                break
            if row is None:
                break
            got[row[0]] = row
    except sqlite3.DatabaseError as exc:
        errors.append(f"{table}: {exc}")
    try:
        top = db.execute(f"SELECT max(rowid) FROM {table}").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        top = max(got, default=0) + 1000
    if errors:
        lost = 0
        for rowid in range(1, min(int(top), 10**6) + 1):
            if rowid in got:
                continue
            try:
                row = db.execute(f"SELECT rowid, * FROM {table} WHERE rowid=?",
                                 (rowid,)).fetchone()
            except sqlite3.DatabaseError:
                lost += 1
                continue
            if row is not None:
                got[rowid] = row
        if lost:
            errors.append(f"{table}: {lost} row(s) unreadable")
    return [got[k] for k in sorted(got)], errors
