"""Store: one row per cell, atomic writes, never overwrites, WAL mode, clear errors."""
import sqlite3

import pytest

from bench.core.record import Record
from bench.store import Store, StoreError
from tests.tiny import tiny_cell


def _record(seed=0, status="done", **kw):
    cell = tiny_cell("ring8", [], seed=seed)
    return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                  config=cell.to_dict(), status=status, **kw)


def test_put_get_roundtrip_and_counts(tmp_path):
    with Store(tmp_path / "s") as store:
        r = _record(metrics={"modes": 8.0}, curves={"g_adv": [[1, 0.5]]})
        store.put(r)
        assert store.has(r.cell_id)
        assert store.get(r.cell_id) == r
        store.put(_record(seed=1, status="diverged", reason="non-finite loss at step 3"))
        assert store.counts() == {"done": 1, "diverged": 1}
        assert [x.seed for x in store.records()] == [0, 1]
        assert store.resolve_id(r.cell_id[:6]) == r.cell_id


def test_wal_mode(tmp_path):
    Store(tmp_path).close()
    mode = sqlite3.connect(tmp_path / "results.sqlite").execute("PRAGMA journal_mode").fetchone()
    assert mode[0] == "wal"


def test_existing_cell_is_never_overwritten(tmp_path):
    with Store(tmp_path) as store:
        store.put(_record(metrics={"modes": 8.0}))
        with pytest.raises(StoreError, match="already stored; not overwritten"):
            store.put(_record(metrics={"modes": 1.0}))
        assert store.get(_record().cell_id).metrics == {"modes": 8.0}


def test_unwritable_store_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot use store"):
        Store(blocker / "store")


def test_missing_store_for_reading(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store(tmp_path / "nothing", create=False)


def test_unknown_status_is_rejected():
    with pytest.raises(ValueError, match="unknown record status"):
        _record(status="finished")
