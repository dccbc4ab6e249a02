"""On-disk cache location, atomic writes and hashing helpers."""
from __future__ import annotations

import hashlib
import json
import os
import pathlib
import tempfile

import numpy as np
import torch

CACHE_ENV = "GANBENCH_CACHE"


def cache_root(cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """``cache_dir`` if given, else $GANBENCH_CACHE, else ~/.cache/ganbench. Created on demand."""
    if cache_dir is not None:
        root = pathlib.Path(os.fspath(cache_dir))
    elif os.environ.get(CACHE_ENV):
        root = pathlib.Path(os.environ[CACHE_ENV])
    else:
        root = pathlib.Path.home() / ".cache" / "ganbench"
    root = root.expanduser().absolute()
    root.mkdir(parents=True, exist_ok=True)
    return root


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def sha256_json(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def update_with_tensor(h, t: torch.Tensor) -> None:
    """Feed a tensor's dtype, shape and raw bytes into a hashlib object."""
    t = t.detach().cpu().contiguous()
    h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
    h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())


def sha256_tensors(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        update_with_tensor(h, t)
    return h.hexdigest()


def sha256_state_dict(state_dict: dict) -> str:
    h = hashlib.sha256()
    for k in sorted(state_dict):
        h.update(k.encode())
        update_with_tensor(h, state_dict[k])
    return h.hexdigest()


def atomic_torch_save(obj, path: pathlib.Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_savez(path: pathlib.Path, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp.npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
