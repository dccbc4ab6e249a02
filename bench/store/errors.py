"""The store's one-line errors (their own module: the store's modules all raise them)."""
from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be opened or written; one line for the user."""


class StoreBusy(StoreError):
    """Another process held the store's write lock past the busy timeout: not a cell's fault
    (nothing is stored as failed); the one line names the holder when it can."""
