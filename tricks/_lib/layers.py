"""Helpers shared by the layer tricks (batch norm, dropout, minibatch layers, VBN, self-attention,
dual D). Private: the registry does not import modules whose name starts with '_'."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

from bench.nets.parts import Stage
from bench.trickapi.trick import TrickError


def stages(net: nn.Module, trick: str) -> list[Stage]:
    """The net's `blocks` (a list of Stages); a clear error when the net has none."""
    blocks = getattr(net, "blocks", None)
    if blocks is None or not all(isinstance(b, Stage) for b in blocks):
        raise TrickError(f"{trick} needs a net whose `blocks` are Stages; "
                         f"{type(net).__name__} has none")
    return list(blocks)


def feature_norm(stage: Stage, conv: Callable[[int], nn.Module],
                 mlp: Callable[[int], nn.Module]) -> nn.Module:
    """The conv (2-D feature maps, `resolution` set) or MLP flavour of a per-channel layer."""
    return conv(stage.channels) if stage.resolution is not None else mlp(stage.channels)


# -- re-initialising a copy of a net (dual discriminator) ---------------------------------------
def _refresh_spectral_norm(module: nn.Module) -> None:
    """torch's spectral-norm parametrization keeps power-iteration vectors u, v for the old
    weight; after re-drawing the weight, restart them as a fresh `spectral_norm` would (random
    u, v followed by 15 power iterations)."""
    for plist in module.parametrizations.values():
        if not isinstance(getattr(plist, "original", None), torch.Tensor):
            continue
        for p in plist:
            if hasattr(p, "_u") and hasattr(p, "_v") and hasattr(p, "n_power_iterations"):
                fresh = type(p)(plist.original.detach(), n_power_iterations=p.n_power_iterations,
                                dim=p.dim, eps=p.eps)
                with torch.no_grad():
                    p._u.copy_(fresh._u)
                    p._v.copy_(fresh._v)


@torch.no_grad()
def redraw_like(t: torch.Tensor) -> None:
    """Replace t's values in place with i.i.d. draws from N(mean(t), std(t)) (population std): a
    tensor initialised N(0, 0.02) is re-drawn from N(0, 0.02), a He-initialised one keeps its
    scale, a constant one (zero biases, unit gains, SAGAN's gamma = 0) keeps its value."""
    mean = t.mean()
    std = t.std(unbiased=False) if t.numel() > 1 else t.new_zeros(())
    t.normal_().mul_(std).add_(mean)


def reinitialize(net: nn.Module) -> None:
    """Re-draw every parameter of a freshly built `net` in place, independently of its current
    values but from the same distribution scale: each parameter tensor (under a parametrization
    such as spectral norm: its unnormalised `original`) gets i.i.d. Gaussian values with the
    tensor's own mean and standard deviation (`redraw_like`), then spectral-norm power-iteration
    vectors are restarted. Needs no cooperation from the layers (no `reset_parameters`), so it
    covers layers any trick inserted and other architectures' init schemes (up to the shape of
    the distribution: a uniform init is re-drawn as a Gaussian of the same std). Buffers
    (running statistics, flags) are left as copied: at build time they hold initial values."""
    for m in net.modules():
        if parametrize.is_parametrized(m):
            for plist in m.parametrizations.values():
                if isinstance(getattr(plist, "original", None), torch.Tensor):
                    redraw_like(plist.original)
            _refresh_spectral_norm(m)
        for name, p in m.named_parameters(recurse=False):
            if isinstance(m, parametrize.ParametrizationList) and name == "original":
                continue  # done with its owner above
            redraw_like(p)
