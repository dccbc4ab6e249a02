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
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.store.db import CELL_ID, SCHEMA, printable
from bench.store.integrity import FILES_SCHEMA, sha256_file

TABLES = ("cells", "grids", "members", "retired", "files", "leases")
SET_ASIDE = """
CREATE TABLE IF NOT EXISTS set_aside (
    cell_id TEXT, reason TEXT NOT NULL, at REAL NOT NULL, record TEXT
);
"""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)   # found (and not repaired)
    repaired: list[str] = field(default_factory=list)   # fixed by --repair
    notes: list[str] = field(default_factory=list)      # counts, what was looked at

    def problem(self, text: str) -> None:
        self.problems.append(printable(text))


def _rows(db: sqlite3.Connection, table: str) -> tuple[list[tuple], list[str]]:
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


# -- reading records straight from the pages of a damaged file ------------------------------------
def _varint(buf: bytes, i: int) -> tuple[int, int]:
    value = 0
    for k in range(9):
        if i + k >= len(buf):
            raise IndexError("varint past the end")
        b = buf[i + k]
        if k == 8:
            return (value << 8) | b, i + 9
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, i + k + 1
    raise IndexError("bad varint")


def _column_size(serial: int) -> int:
    if serial >= 12:
        return (serial - 12) // 2 if serial % 2 == 0 else (serial - 13) // 2
    return (0, 1, 2, 3, 4, 6, 8, 8, 0, 0, 0, 0)[serial]


def _column_value(serial: int, raw: bytes):
    import struct

    if serial == 0:
        return None
    if 1 <= serial <= 6:
        return int.from_bytes(raw, "big", signed=True)
    if serial == 7:
        return struct.unpack(">d", raw)[0]
    if serial in (8, 9):
        return serial - 8
    if serial >= 13 and serial % 2:
        return raw.decode("utf-8")
    return bytes(raw)


def raw_cell_rows(db_file: Path) -> list[tuple]:
    """Rows of the `cells` table read straight from the file's table-leaf pages, following
    overflow chains: what SQL cannot reach when an interior page or the schema is damaged.
    Only rows shaped like `cells` rows (8 columns, a 16-character id, a JSON record) are kept;
    the caller validates each record."""
    data = Path(db_file).read_bytes()
    if len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        page_size = 4096
        usable = page_size
    else:
        page_size = int.from_bytes(data[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        usable = page_size - data[20]
    if page_size < 512 or page_size & (page_size - 1):
        page_size, usable = 4096, 4096
    pages = len(data) // page_size
    free = _freelist(data, page_size, pages)  # deleted rows live on there: never resurrected
    best: dict[str, tuple] = {}
    for n in range(pages):
        if n + 1 in free:
            continue
        base = n * page_size
        head = base + (100 if n == 0 else 0)
        if data[head] != 0x0D:  # a table b-tree leaf
            continue
        cells = int.from_bytes(data[head + 3:head + 5], "big")
        for c in range(min(cells, page_size // 2)):
            try:
                ptr = int.from_bytes(data[head + 8 + 2 * c:head + 10 + 2 * c], "big")
                row = _raw_row(data, base, ptr, page_size, usable, pages)
            except (IndexError, ValueError, UnicodeDecodeError):
                continue
            if row is not None:  # the newest of a cell's rows (a stale copy may survive)
                old = best.get(row[0])
                if old is None or (row[7] or 0) > (old[7] or 0):
                    best[row[0]] = row
    return list(best.values())


def _freelist(data: bytes, page_size: int, pages: int) -> set[int]:
    """Page numbers on the freelist, from the file header (empty when it cannot be read)."""
    free: set[int] = set()
    if not data.startswith(b"SQLite format 3\0"):
        return free
    trunk = int.from_bytes(data[32:36], "big")
    while 1 <= trunk <= pages and trunk not in free:
        free.add(trunk)
        start = (trunk - 1) * page_size
        count = int.from_bytes(data[start + 4:start + 8], "big")
        for k in range(min(count, page_size // 4 - 2)):
            free.add(int.from_bytes(data[start + 8 + 4 * k:start + 12 + 4 * k], "big"))
        trunk = int.from_bytes(data[start:start + 4], "big")
    return free


def _raw_row(data: bytes, base: int, ptr: int, page_size: int, usable: int, pages: int):
    i = base + ptr
    size, i = _varint(data, i)
    _rowid, i = _varint(data, i)
    x = usable - 35
    if size <= x:
        payload = data[i:i + size]
    else:
        m = ((usable - 12) * 32 // 255) - 23
        k = m + ((size - m) % (usable - 4))
        local = k if k <= x else m
        parts = [data[i:i + local]]
        page = int.from_bytes(data[i + local:i + local + 4], "big")
        got, hops = local, 0
        while got < size:
            if not 1 <= page <= pages or hops > pages:
                return None
            start = (page - 1) * page_size
            take = min(usable - 4, size - got)
            parts.append(data[start + 4:start + 4 + take])
            got += take
            page = int.from_bytes(data[start:start + 4], "big")
            hops += 1
        payload = b"".join(parts)
    if len(payload) != size:
        return None
    header, j = _varint(payload, 0)
    serials = []
    while j < header:
        t, j = _varint(payload, j)
        serials.append(t)
    if len(serials) != 8:
        return None
    values, at = [], header
    for t in serials:
        n = _column_size(t)
        values.append(_column_value(t, payload[at:at + n]))
        at += n
    if not (isinstance(values[0], str) and len(values[0]) == 16 and isinstance(values[6], str)
            and values[6].startswith('{"cell_id"')):
        return None
    return tuple(values)


def _record_problem(cell_id: object, text: object) -> str | None:
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


def _digest_problem(path: Path, row: tuple | None) -> str | None:
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


def _live(owner: str, heartbeat: float) -> bool:
    from bench.schedule.leases import lease_timeout, owner_alive

    return owner_alive(owner, heartbeat, time.time(), lease_timeout())


def check_store(root: str | os.PathLike, repair: bool = False) -> Report:
    root = Path(root)
    db_path = root / "results.sqlite"
    rep = Report()
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
            rows, errors = _rows(db, table)
            tables[table] = rows
            for e in errors:
                if "no such table" not in e:
                    rep.problem(f"database {db_path}: {e}")
    finally:
        db.close()
    leases = {r[1]: r for r in tables["leases"]}  # cell_id -> (rowid, cell, owner, hb, att)
    live = {cid for cid, r in leases.items() if r[2] and _live(r[2], r[3])}
    if repair and live:
        rep.problem(f"{len(live)} cell(s) are being trained now (live leases, e.g. "
                    f"{sorted(live)[0]} by {leases[sorted(live)[0]][2]}): stop that run before "
                    f"repairing; nothing was changed")
        return rep

    # records
    invalid: dict[int, str] = {}
    records: dict[str, dict] = {}
    for row in tables["cells"]:
        rowid, cell_id, text, status = row[0], row[1], row[7], row[6]
        why = _record_problem(cell_id, text)
        if why:
            invalid[rowid] = why
            rep.problem(f"invalid record: {why}")
        else:
            records[cell_id] = {"status": status}
    rep.notes.append(f"{len(tables['cells'])} record(s) read, {len(invalid)} invalid")

    # files of done cells
    digests = {(r[1], r[2]): (r[3], r[4]) for r in tables["files"]}
    retire: dict[str, str] = {}
    resample: dict[str, str] = {}
    for cell_id, info in records.items():
        if info["status"] != "done":
            continue
        folder = root / "cells" / cell_id
        why = _digest_problem(folder / "checkpoint.pt", digests.get((cell_id, "checkpoint.pt")))
        if why:
            retire[cell_id] = f"final checkpoint {folder / 'checkpoint.pt'} {why}"
            rep.problem(f"cell {cell_id}: {retire[cell_id]}")
            continue
        for name in ("samples.npz",):
            why = _digest_problem(folder / name, digests.get((cell_id, name)))
            if why:
                resample[cell_id] = f"sample file {folder / name} {why}"
                rep.problem(f"cell {cell_id}: {resample[cell_id]}")

    # temporaries of killed writes (not in cells being trained now)
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

    dead = sorted(cid for cid, r in leases.items() if r[2] and cid not in live)
    for cid in dead:
        rep.problem(f"stale lease on cell {cid}: held by {leases[cid][2]}, which is gone or "
                    f"silent past the timeout")

    if not repair:
        return rep
    unreadable = any("unreadable" in p or "scan stopped" in p for p in rep.problems)
    rep.problems = []  # from here on: what could not be repaired
    if not sound or unreadable:
        _rebuild(root, db_path, tables, invalid, rep)
    elif invalid:
        _set_aside(db_path, tables["cells"], invalid, rep)
    for p in temps:
        try:
            p.unlink()
            rep.repaired.append(f"removed {p}")
        except OSError as exc:
            rep.problem(f"cannot remove {p}: {exc.strerror or exc}")
    if dead or retire:
        db = sqlite3.connect(db_path, timeout=60)
        try:
            with db:
                for cid in dead:
                    db.execute("UPDATE leases SET owner=NULL WHERE cell_id=? AND owner=?",
                               (cid, leases[cid][2]))
                    rep.repaired.append(f"released the stale lease on cell {cid}")
        finally:
            db.close()
    if retire:
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
    for cid, why in resample.items():
        rep.problem(f"cell {cid}: {why}; not repaired here: rewrite it with `ganbench samples "
                    f"--store {root} --cell {cid}`")
    return rep


def _set_aside(db_path: Path, cells: list[tuple], invalid: dict[int, str], rep: Report) -> None:
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


def _rebuild(root: Path, db_path: Path, tables: dict[str, list[tuple]], invalid: dict[int, str],
             rep: Report) -> None:
    """Every readable row into a fresh database; the damaged file kept beside it."""
    from bench.schedule.leases import SCHEMA as LEASES_SCHEMA

    # rows SQL could not reach, read from the pages themselves (kept when their record is valid)
    have = {row[1] for row in tables["cells"]}
    found = 0
    for values in raw_cell_rows(db_path):
        if values[0] not in have and _record_problem(values[0], values[6]) is None:
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


def summary(rep: Report, root: Path, repair: bool) -> str:
    if repair:
        if rep.problems:
            return (f"ganbench check: {len(rep.repaired)} repair(s) made, {len(rep.problems)} "
                    f"problem(s) left in {root}")
        return f"ganbench check: store {root} repaired ({len(rep.repaired)} repair(s))" \
            if rep.repaired else f"ganbench check: store {root} is sound; nothing to repair"
    if rep.problems:
        return (f"ganbench check: {len(rep.problems)} problem(s) in {root}; `ganbench check "
                f"--store {root} --repair` fixes what it safely can")
    return f"ganbench check: store {root} is sound ({'; '.join(rep.notes)})"


def as_json(rep: Report) -> str:
    return json.dumps({"problems": rep.problems, "repaired": rep.repaired, "notes": rep.notes})
