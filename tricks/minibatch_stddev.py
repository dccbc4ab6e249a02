"""Minibatch standard deviation: a layer before D's head that appends one channel (conv features)
or one feature (MLP features) holding the standard deviation of the features over a group of
samples, averaged over all features and positions. Karras et al. 2018, "Progressive Growing of
GANs for Improved Quality, Stability, and Variation", section 3 (group size 4, as in the official
code; one statistic, as StyleGAN2's mbstd_num_features=1).

Per group of G samples: std of every feature over the group (sqrt(var + 1e-8), biased variance),
mean over features (and positions), replicated to every sample of the group (and position).
Grouping follows the official code: sample i belongs to group i mod (B / G). When the batch size B
is not divisible by the group size, G is the largest divisor of B that is <= group_size (the
official code uses min(group_size, B) and requires divisibility). So a batch whose only divisor
<= group_size is 1 (B = 1, or a prime B > group_size) gets groups of one sample: std 0, no signal.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tricks import Trick, register_trick


def group_for(batch: int, group_size: int) -> int:
    """The largest divisor of `batch` that is <= group_size."""
    g = max(1, min(group_size, batch))
    while batch % g:
        g -= 1
    return g


class MinibatchStdDev(nn.Module):
    def __init__(self, group_size: int = 4, eps: float = 1e-8):
        super().__init__()
        self.group_size, self.eps = group_size, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        g = group_for(b, self.group_size)
        y = x.reshape(g, b // g, *x.shape[1:])          # [G, M, ...]: sample i is in group i % M
        y = y - y.mean(dim=0, keepdim=True)
        std = (y.square().mean(dim=0) + self.eps).sqrt()  # [M, ...]
        stat = std.flatten(1).mean(dim=1)                 # [M]
        stat = stat.repeat(g)                             # [B]: sample i gets stat[i % M]
        shape = (b, 1, *x.shape[2:])                      # [B, 1, H, W] or [B, 1]
        return torch.cat([x, stat.view(b, *([1] * (x.dim() - 1))).expand(shape)], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}"


@register_trick
class MinibatchStdDevTrick(Trick):
    name = "minibatch_stddev"
    summary = "D's head also sees the features' std over groups of 4 samples (1 extra channel)"
    source = "Karras et al. 2018"

    @dataclass(frozen=True)
    class Params:
        group_size: int = 4

        def validate(self) -> None:
            if self.group_size < 2:
                raise ValueError("group_size must be >= 2")

    def build(self, nets, ctx):
        nets.D.append_feature_layer(MinibatchStdDev(self.p.group_size), 1)
        return nets
