"""Checkpoint files: written atomically, read safely, always onto the CPU.

- Writing goes to a unique temporary file in the same folder, is fsynced, then atomically
  replaces the old checkpoint; on any failure the temporary file is removed and the old
  checkpoint is untouched (two writers never share a temporary name).
- In a store's cell folder every write is fenced and digested (`bench.store.integrity`): the
  new file's sha256 is recorded in the store only while this process still holds the cell's
  lease (LeaseLost otherwise, and the new file is dropped); the checkpoint it replaces is kept as
  `checkpoint.prev.pt`, the fallback when the new one turns out corrupt.
- Reading a store's checkpoint checks its sha256 against the recorded one first (either the
  current or the previous digest), so a file with flipped bits, or one a paused process wrote
  after losing its lease, is refused (CheckpointError) before torch reads it.
- A full disk is one line that says so and names the folder (`DiskFull`, a CheckpointError).
- Reading uses `torch.load(weights_only=True)`: a checkpoint holds only tensors and plain
  values, so a file planted in a store cannot run code. Everything is mapped to the CPU; the
  trainer moves nets, optimizer and trick state to the cell's device and puts each RNG state back
  where it belongs (a CPU RNG state must stay a CPU tensor).
"""
from __future__ import annotations

import errno
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import torch


from bench.store import integrity

PREVIOUS_SUFFIX = ".prev.pt"  # checkpoint.pt -> checkpoint.prev.pt, the previous good one


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or written; the message is one line naming the file."""


class DiskFull(CheckpointError):
    """No space left where a checkpoint or sample file is written."""


def previous_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(path.name[:-3] + PREVIOUS_SUFFIX if path.name.endswith(".pt")
                          else path.name + ".prev")


def write_error(path: Path, exc: OSError, what: str = "checkpoint") -> CheckpointError:
    """One line for a failed write: a full disk says so and where."""
    if getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"disk full: cannot write {what} {path} (no space left on the device "
                        f"holding {Path(path).parent}); free space and rerun to resume")
    return CheckpointError(f"cannot write {what} {path}: {exc.strerror or exc}")


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Remove `*.tmp` files a killed write left in a cell folder (their writer is gone: the
    caller holds the cell's lease). Returns what was removed."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for p in entries:
        if p.name.endswith(".tmp") or ".tmp." in p.name:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
    return removed


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
    """Write `obj` to `path` atomically. In a store's cell folder the write is fenced and its
    digest recorded (see the module docstring); LeaseLost leaves the old files as they were."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(obj, buf)
        data = buf.getvalue()
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # the fence: recorded only while the lease is ours (LeaseLost: nothing is moved)
        integrity.record_files(path.parent, {path.name: (integrity.sha256_bytes(data),
                                                         len(data))})
        if path.exists():  # kept until the next write: the fallback for a corrupt new file
            os.replace(path, previous_path(path))
        os.replace(tmp, path)
        tmp = None
        _fsync_dir(path.parent)
    except OSError as exc:
        raise write_error(path, exc) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def load(path: Path) -> dict[str, Any]:
    """The checkpoint at `path`, on the CPU. CheckpointError when it cannot be read safely, or
    when the store recorded another sha256 for it (checked before torch reads a byte)."""
    path = Path(path)
    try:
        if path.exists():
            integrity.verify(path, "checkpoint.pt" if path.name.startswith("checkpoint") else None)
    except integrity.DigestMismatch as exc:
        raise CheckpointError(f"checkpoint {exc}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
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
