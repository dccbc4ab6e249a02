"""Fused forms of torch's own layers (linear, activations, batch norm, convolutions) for K
stacked models: `x` is [K, B, ...], `st.p(prefix + "weight")` the stacked [K, *shape] tensor.
Each registers itself with `fused_layer` on import (bench/train/fused/nets.py imports this
module)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.train.fused.forms import NotFusable, fused_layer


# -- leaf layers ----------------------------------------------------------------------------------
@fused_layer(nn.Linear)
def _linear(m, prefix, x, st):
    w = st.p(prefix + "weight").transpose(1, 2)  # [K, in, out]; BLAS reads the transpose
    if m.bias is None:
        return torch.bmm(x, w)
    return torch.baddbmm(st.p(prefix + "bias").unsqueeze(1), x, w)


@fused_layer(nn.Identity)
def _identity(m, prefix, x, st):
    return x


@fused_layer(nn.ReLU)
def _relu(m, prefix, x, st):
    return F.relu(x)


@fused_layer(nn.LeakyReLU)
def _leaky(m, prefix, x, st):
    return F.leaky_relu(x, m.negative_slope)


@fused_layer(nn.Tanh)
def _tanh(m, prefix, x, st):
    return torch.tanh(x)


@fused_layer(nn.BatchNorm1d)
def _batch_norm(m, prefix, x, st):
    """Per-model batch statistics over each model's own batch (dim 1). Running statistics are
    stacked buffers [K, C], updated here in place as nn.BatchNorm1d does in training mode
    (momentum average, unbiased variance, a step counter), and read in eval mode."""
    if x.dim() != 3:
        raise NotFusable("batch norm is fused for MLP features [K, B, C] only")
    return _batch_norm_over(m, prefix, x, st, dims=(1,))


@fused_layer(nn.BatchNorm2d)
def _batch_norm_2d(m, prefix, x, st):
    """nn.BatchNorm2d per model on feature maps [K, B, C, H, W]: statistics over each model's
    batch and pixels (dims 1, 3, 4), running statistics as `_batch_norm`'s."""
    if x.dim() != 5:
        raise NotFusable("2-D batch norm is fused for feature maps [K, B, C, H, W] only")
    return _batch_norm_over(m, prefix, x, st, dims=(1, 3, 4))


def _batch_norm_over(m, prefix, x, st, dims: tuple[int, ...]):
    track = m.track_running_stats
    use_batch = st.training or not track
    shape = [x.shape[0]] + [1] * (x.dim() - 1)  # [K, 1, C, 1, 1]: C at dim 2
    shape[2] = x.shape[2]
    w = st.p(prefix + "weight").view(shape) if m.affine else None
    b = st.p(prefix + "bias").view(shape) if m.affine else None
    if use_batch:
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        if st.training and track:
            n = 1
            for d in dims:
                n *= x.shape[d]
            with torch.no_grad():
                rm, rv = st.b(prefix + "running_mean"), st.b(prefix + "running_var")
                nbt = st.b(prefix + "num_batches_tracked")
                nbt.add_(1)
                mean_kc = mean.detach().reshape(x.shape[0], x.shape[2])
                var_kc = var.detach().reshape(x.shape[0], x.shape[2])
                mom = m.momentum if m.momentum is not None else None
                if mom is None:  # cumulative average, as nn.BatchNorm with momentum=None
                    mom_t = (1.0 / nbt.to(x.dtype)).unsqueeze(1)
                    rm.mul_(1 - mom_t).add_(mom_t * mean_kc)
                    rv.mul_(1 - mom_t).add_(mom_t * var_kc * n / max(n - 1, 1))
                else:
                    rm.mul_(1 - mom).add_(mean_kc, alpha=mom)
                    rv.mul_(1 - mom).add_(var_kc * (n / max(n - 1, 1)), alpha=mom)
    else:
        mean = st.b(prefix + "running_mean").view(shape)
        var = st.b(prefix + "running_var").view(shape)
    y = (x - mean) * torch.rsqrt(var + m.eps)
    if w is not None:
        y = y * w + b
    return y


# -- conv layers: the K models as one grouped convolution ---------------------------------------
def _plain_conv(m, transposed: bool) -> None:
    if m.groups != 1 or m.padding_mode != "zeros" or (transposed and any(m.output_padding)) \
            or isinstance(m.padding, str):
        raise NotFusable(f"{type(m).__name__}({m.extra_repr()}) has no fused form (groups, "
                         f"padding mode or output padding)")


def _models_as_channels(x: torch.Tensor) -> torch.Tensor:
    """[K, B, C, H, W] -> [B, K*C, H, W] (model k's channels are the k-th block)."""
    k, b = x.shape[:2]
    return x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])


def _channels_as_models(y: torch.Tensor, k: int) -> torch.Tensor:
    """[B, K*C, H, W] -> [K, B, C, H, W]."""
    b = y.shape[0]
    return y.reshape(b, k, y.shape[1] // k, *y.shape[2:]).transpose(0, 1)


@fused_layer(nn.Conv2d)
def _conv2d(m, prefix, x, st):
    """K models' Conv2d as one convolution with groups = K: model k's input channels only meet
    model k's filters."""
    _plain_conv(m, False)
    k = x.shape[0]
    w = st.p(prefix + "weight")  # [K, O, C, kh, kw]
    bias = st.p(prefix + "bias").reshape(-1) if m.bias is not None else None
    y = F.conv2d(_models_as_channels(x), w.reshape(-1, *w.shape[2:]), bias, m.stride,
                 m.padding, m.dilation, groups=k)
    return _channels_as_models(y, k)


@fused_layer(nn.ConvTranspose2d)
def _conv_transpose2d(m, prefix, x, st):
    """K models' ConvTranspose2d as one with groups = K (weight [K*C_in, C_out, kh, kw])."""
    _plain_conv(m, True)
    k = x.shape[0]
    w = st.p(prefix + "weight")  # [K, C, O, kh, kw]
    bias = st.p(prefix + "bias").reshape(-1) if m.bias is not None else None
    y = F.conv_transpose2d(_models_as_channels(x), w.reshape(-1, *w.shape[2:]), bias, m.stride,
                           m.padding, m.output_padding, k, m.dilation)
    return _channels_as_models(y, k)
