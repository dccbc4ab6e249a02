"""Reading `cells` records straight from the pages of a damaged SQLite file (the b-tree leaf pages
and their overflow chains), for rows SQL cannot reach."""
from __future__ import annotations

from pathlib import Path


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
