"""Small tensor helpers shared by the loaders: seeded RNG streams, uint8 scaling, resizing."""
from __future__ import annotations

import zlib

import numpy as np
import torch
import torch.nn.functional as F


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """An independent, local RNG for (seed, stream name); never touches global RNG state."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(stream.encode())]))


def uint8_to_unit(x: torch.Tensor) -> torch.Tensor:
    """uint8 images (0..255) -> float32 in [-1, 1], vectorised."""
    return x.to(torch.float32).div_(127.5).sub_(1.0)


def resize(x: torch.Tensor, size: int, chunk: int = 16384) -> torch.Tensor:
    """Resize float images ``[N, C, H, W]`` to ``size x size``: bilinear to upsample, area to downsample."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    up = size > x.shape[-1]
    kwargs = {"mode": "bilinear", "align_corners": False} if up else {"mode": "area"}
    parts = [F.interpolate(x[i : i + chunk], size=(size, size), **kwargs) for i in range(0, len(x), chunk)]
    return torch.cat(parts).contiguous() if parts else x.new_empty((0, x.shape[1], size, size))
