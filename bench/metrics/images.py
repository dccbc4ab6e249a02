"""Image conversions shared by the metrics: float [-1, 1] <-> uint8 (what torch-fidelity consumes)."""
from __future__ import annotations

import torch


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float images in [-1, 1] -> uint8 0..255 (NaN -> 0, values outside [-1, 1] are clipped)."""
    y = torch.nan_to_num(x.detach().to(torch.float32), nan=-1.0, posinf=1.0, neginf=-1.0)
    return y.clamp_(-1.0, 1.0).add_(1.0).mul_(127.5).round_().to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 -> float32 in [-1, 1] (the inverse of ``to_uint8`` up to quantisation)."""
    return x.to(torch.float32).div(127.5).sub_(1.0)
