"""Layers shared by the Karras et al. architectures (`progressive_growing`, `stylegan`): pixel
norm, He-initialised conv/linear layers with an optional equalized learning rate and a learning-
rate multiplier, and the resolution plan. Private: the registry does not import `_` modules.

Equalized learning rate (Karras et al. 2018, section 4.1): weights are stored as N(0, 1) and
multiplied at run time by the He constant c = gain / sqrt(fan_in), so Adam's scale-invariant steps
move every layer at the same relative speed. Without it (`equalized=False`) the same
forward distribution is obtained by the conventional He init: weights stored as N(0, c^2), used as
they are. A learning-rate multiplier `lr_mul` (StyleGAN's mapping network: 0.01) stores
weight / lr_mul and biases / lr_mul and multiplies them back at run time, so their Adam steps are
lr_mul times smaller. The run-time factors are `torch.nn.utils.parametrize` parametrizations, so
the layers stay `nn.Conv2d` / `nn.Linear` and other tricks (spectral norm) still find and wrap them;
a layer with no run-time factor is a plain layer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

SQRT2 = math.sqrt(2.0)


class PixelNorm(nn.Module):
    """x / sqrt(mean_c x^2 + eps): each position's feature vector to unit RMS (Karras et al. 2018,
    section 4.2). Works on [B, C, H, W] feature maps and [B, C] vectors (latents)."""

    def __init__(self, eps: float = 1e-8):
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + self.eps)


class Gain(nn.Module):
    """Parametrization: the stored tensor times a constant."""

    def __init__(self, gain: float):
        super().__init__()
        self.gain = float(gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain

    def extra_repr(self) -> str:
        return f"gain={self.gain:.4g}"


def he_init_(layer: nn.Module, *, equalized: bool, gain: float = SQRT2, lr_mul: float = 1.0,
             bias_init: float = 0.0) -> nn.Module:
    """Initialise a Conv2d/Linear in place (see the module doc); `gain` is the activation's He
    gain (sqrt 2 before a leaky ReLU, 1 before a linear output). Returns the layer."""
    he = gain / math.sqrt(layer.weight[0].numel())
    store_std, run_gain = (1.0 / lr_mul, he * lr_mul) if equalized else (he / lr_mul, lr_mul)
    with torch.no_grad():
        layer.weight.normal_(0.0, store_std)
        if layer.bias is not None:
            layer.bias.fill_(bias_init / lr_mul)
    if run_gain != 1.0:
        parametrize.register_parametrization(layer, "weight", Gain(run_gain))
    if layer.bias is not None and lr_mul != 1.0:
        parametrize.register_parametrization(layer, "bias", Gain(lr_mul))
    return layer


def conv(c_in: int, c_out: int, k: int, *, equalized: bool, gain: float = SQRT2,
         padding: int | None = None) -> nn.Conv2d:
    """k x k conv, 'same' padding unless given."""
    layer = nn.Conv2d(c_in, c_out, k, padding=k // 2 if padding is None else padding)
    return he_init_(layer, equalized=equalized, gain=gain)  # type: ignore[return-value]


def linear(f_in: int, f_out: int, *, equalized: bool, gain: float = SQRT2, lr_mul: float = 1.0,
           bias_init: float = 0.0) -> nn.Linear:
    return he_init_(nn.Linear(f_in, f_out), equalized=equalized, gain=gain,  # type: ignore
                    lr_mul=lr_mul, bias_init=bias_init)


def resolution_plan(resolution: int) -> list[int]:
    """Resolutions from the base (4..7 px) up to `resolution`, doubling: 16 -> [4, 8, 16],
    28 -> [7, 14, 28], 32 -> [4, 8, 16, 32]."""
    plan = [resolution]
    while plan[0] % 2 == 0 and plan[0] // 2 >= 4:
        plan.insert(0, plan[0] // 2)
    if len(plan) < 2:
        raise ValueError(f"resolution {resolution} cannot be reached by doubling from 4..7 px")
    return plan


def channel_plan(width: int, levels: int) -> list[int]:
    """Channels per resolution level (base first): `width` at full resolution, doubling per
    halving, like the DCGAN baseline (`NetConfig.width` = channels of the last feature map)."""
    return [width * 2 ** (levels - 1 - i) for i in range(levels)]


def upsample(x: torch.Tensor, factor: int, mode: str = "nearest") -> torch.Tensor:
    if factor == 1:
        return x
    if mode == "nearest":
        return F.interpolate(x, scale_factor=factor, mode="nearest")
    return F.interpolate(x, scale_factor=factor, mode=mode, align_corners=False)


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Average pooling by `factor` (the box filter ProGAN uses)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def matched_width(count_at, target: int, limit: int, what: str) -> int:
    """The width in [1, limit] whose parameter count `count_at(width)` is nearest `target` (counts
    grow with width, so a bisection); raises if even that one is more than 10% away. Used by the
    `capacity = "matched"` options, which compare a trick's net with the cell's baseline net."""
    lo, hi = 1, limit
    while lo < hi:  # smallest width whose count reaches the target
        mid = (lo + hi) // 2
        if count_at(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    best = min({max(1, lo - 1), lo}, key=lambda w: abs(count_at(w) - target))
    if abs(count_at(best) - target) > 0.1 * target:
        from bench.trickapi.trick import TrickError
        raise TrickError(f"{what}: no width within 10% of the baseline's {target:,} parameters "
                         f"(nearest: width {best}, {count_at(best):,})")
    return best
