"""Shared helper for zero-centred gradient penalties (R1 on real data, R2 on fake data)."""
from __future__ import annotations

import torch

from tricks.wgan_gp import input_gradient


def squared_input_gradient(critic, x: torch.Tensor) -> torch.Tensor:
    """E_x ||d critic(x) / dx||^2 (per-sample squared norm, batch mean), kept in the graph.
    `x` is detached first, so the penalty trains the critic only."""
    grad = input_gradient(critic, x.detach().requires_grad_(True))
    return grad.square().sum(dim=1).mean()
