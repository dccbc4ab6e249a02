"""Checkpoint files: written atomically, read safely, always onto the CPU.

- Writing goes to a unique temporary file in the same folder, is fsynced, then atomically
  replaces the old checkpoint; on any failure the temporary file is removed and the old
  checkpoint is untouched (two writers never share a temporary name).
- Reading uses `torch.load(weights_only=True)`: a checkpoint holds only tensors and plain
  values, so a file planted in a store cannot run code. Everything is mapped to the CPU; the
  trainer moves nets, optimizer and trick state to the cell's device and puts each RNG state back
  where it belongs (a CPU RNG state must stay a CPU tensor).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or written; the message is one line naming the file."""


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_atomic(obj: Any, path: Path) -> None:
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def load(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, on the CPU. CheckpointError when it cannot be read safely."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except Exception as exc:  # truncated, corrupt, or holding objects other than tensors
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise CheckpointError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"cannot read checkpoint {path}: not a checkpoint dict")
    return obj
