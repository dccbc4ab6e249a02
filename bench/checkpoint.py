"""Atomic checkpoint files: a crash while saving never leaves a truncated checkpoint behind."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch


def save_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load(path: Path, device: torch.device) -> Any:
    # Checkpoints hold RNG states and small python objects, hence weights_only=False;
    # they are only ever read from the user's own store.
    return torch.load(path, map_location=device, weights_only=False)
