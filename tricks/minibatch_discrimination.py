"""Minibatch discrimination: D's head also sees, for every sample, how close it is to the other
samples of its batch. Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.2.

The features f(x_i) in R^A (the last D stage's output, flattened) are multiplied by a learned
tensor T in R^{A x B x C} giving M_i in R^{B x C}; for each kernel b,
    o(x_i)_b = sum_{j != i} exp(-||M_{i,b} - M_{j,b}||_L1) + bias_b
and o(x_i) in R^B is appended to the features. B = 100 kernels of C = 5 dimensions as in the
authors' CIFAR-10 code (openai/improved-gan, `MinibatchLayer(num_kernels=100)`, dim_per_kernel=5),
which also excludes j = i and adds the per-kernel bias.

Initialisation, as in that code: T ~ N(0, 0.05), then a data-dependent init on the first batch D
sees in training (the real batch of the first D step): each kernel's slice of T is rescaled so the
mean distance of a sample to its nearest neighbour in the batch is 2, and the bias is set to minus
the mean of o over that batch. Without it o ~ B-1 for every sample (all distances ~0 at init) and
D starts with a huge constant logit. A buffer `calibrated` records that this happened (so a resumed
run does not redo it); `reset_parameters()` clears it. The code's weight normalisation of T (a
reparametrization with the same function class) is left out.

Conv features [B, C, H, W]: o is computed on the flattened features and broadcast over the H x W
positions as B extra channels, so the conv head (a conv whose kernel covers the whole final map)
reads it like any other channel. MLP features [B, F] get B extra features.

The loop sends real and fake samples through D as separate batches, so o measures the diversity
within a batch of real or of generated samples, as in the paper.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.trick import TrickError
from tricks import Trick, register_trick


class MinibatchDiscrimination(nn.Module):
    def __init__(self, in_features: int, n_kernels: int = 100, kernel_dim: int = 5,
                 init_std: float = 0.05, data_init: bool = True):
        super().__init__()
        self.in_features, self.n_kernels, self.kernel_dim = in_features, n_kernels, kernel_dim
        self.init_std, self.data_init = init_std, data_init
        self.T = nn.Parameter(torch.empty(in_features, n_kernels, kernel_dim))
        self.bias = nn.Parameter(torch.empty(n_kernels))
        self.register_buffer("calibrated", torch.tensor(False))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.T, 0.0, self.init_std)
        nn.init.zeros_(self.bias)
        self.calibrated.fill_(not self.data_init)

    def _distances(self, x: torch.Tensor) -> torch.Tensor:
        """L1 distances ||M_{i,b} - M_{j,b}||: [B_i, B_j, K]."""
        f = x.flatten(1)
        if f.shape[1] != self.in_features:
            raise RuntimeError(f"minibatch discrimination expects {self.in_features} features "
                               f"per sample, got {f.shape[1]}")
        m = torch.einsum("na,akc->knc", f, self.T)                   # M: [K, B, C]
        # cdist computes the K pairwise L1 tables without a [B, B, K, C] intermediate (6x faster)
        return torch.cdist(m, m, p=1).permute(1, 2, 0)

    def closeness(self, x: torch.Tensor) -> torch.Tensor:
        """o(x_i) for every sample: [B, n_kernels]."""
        b = x.shape[0]
        others = 1.0 - torch.eye(b, device=x.device, dtype=x.dtype)   # exclude j == i
        return (torch.exp(-self._distances(x)) * others.unsqueeze(2)).sum(dim=1) + self.bias

    @torch.no_grad()
    def _calibrate(self, x: torch.Tensor) -> None:
        b = x.shape[0]
        dist = self._distances(x) + 1e6 * torch.eye(b, device=x.device, dtype=x.dtype)[..., None]
        mean_min = 0.5 * dist.min(dim=1).values.mean(dim=0)           # [K]
        self.T.div_(mean_min.clamp_min(1e-12)[None, :, None])
        self.bias.zero_()
        self.bias.copy_(-self.closeness(x).mean(dim=0))
        self.calibrated.fill_(True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and not bool(self.calibrated) and x.shape[0] > 1:
            self._calibrate(x.detach())
        o = self.closeness(x)
        if x.dim() > 2:  # broadcast over positions as extra channels
            o = o.view(*o.shape, *([1] * (x.dim() - 2))).expand(-1, -1, *x.shape[2:])
        return torch.cat([x, o], dim=1)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, n_kernels={self.n_kernels}, " \
               f"kernel_dim={self.kernel_dim}"


@register_trick
class MinibatchDiscriminationTrick(Trick):
    name = "minibatch_discrimination"
    summary = "D's head also sees each sample's L1 closeness to the rest of its batch (100 kernels)"
    source = "Salimans et al. 2016"

    @dataclass(frozen=True)
    class Params:
        n_kernels: int = 100
        kernel_dim: int = 5
        init_std: float = 0.05
        data_init: bool = True

        def validate(self) -> None:
            if self.n_kernels < 1 or self.kernel_dim < 1 or self.init_std <= 0:
                raise ValueError("need n_kernels >= 1, kernel_dim >= 1, init_std > 0")

    def build(self, nets, ctx):
        D = nets.D
        blocks = getattr(D, "blocks", None)
        if not blocks or not hasattr(D, "append_feature_layer"):
            raise TrickError(f"{self.name} needs a D with `blocks` and `append_feature_layer`")
        res = blocks[-1].resolution
        in_features = D.feature_channels * (res * res if res else 1)
        layer = MinibatchDiscrimination(in_features, self.p.n_kernels, self.p.kernel_dim,
                                        self.p.init_std, self.p.data_init)
        D.append_feature_layer(layer, self.p.n_kernels)
        return nets
