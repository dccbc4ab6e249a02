"""The store layer: what a run leaves behind and how it is read back.

- `db.py`: the results store (SQLite, one row per cell, plus per-cell artifact folders);
- `samples.py`: the per-cell sample file the report draws (torch-free format);
- `results.py`: records as a pandas table, the API reports and users read (`load_records`).

`from bench.store import Store, StoreError` is the store API; `results` is imported on its own
(it needs pandas, which the training side does not).
"""
from bench.store.db import CELL_ID, Store, StoreError

__all__ = ["Store", "StoreError", "CELL_ID"]
