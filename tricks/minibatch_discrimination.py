"""Minibatch discrimination: D's head also sees, for every sample, how close it is to the other
samples of its batch. Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.2.

As in the authors' CIFAR-10 code (openai/improved-gan, `nn.MinibatchLayer`, placed after
`GlobalPoolLayer`): the features f(x_i) in R^A are D's last-stage output *globally average-pooled*
over positions (A = D's feature channels; MLP features are used as they are), multiplied by a
weight-normalised tensor W in R^{A x B x C},
    W[:, b, c] = theta[:, b, c] * exp(log_scale[b, c]) / ||theta[:, b, c]||_2,
giving M_i in R^{B x C}; for each kernel b,
    o(x_i)_b = sum_{j != i} exp(-||M_{i,b} - M_{j,b}||_L1) + bias_b
and o(x_i) in R^B is appended to D's features. B = 100 kernels of C = 5 dimensions
(`num_kernels=100`, `dim_per_kernel=5`), theta ~ N(0, 0.05), j = i excluded, per-kernel bias.

Initialisation, as in that code: a data-dependent init on the first batch D sees in training (the
real batch of the first D step) lowers each kernel's log_scale so the mean distance of a sample
to its nearest neighbour in the batch is 2, and sets the bias to minus the mean of o over that
batch. Without it o ~ B-1 for every sample (all distances ~0 at init) and D starts with a huge
constant logit. A buffer `calibrated` records that this happened (so a resumed run does not redo
it); `reset_parameters()` clears it.

L1 distances: gradient penalties (gradient_penalty, relativistic, wgan_gp) differentiate D's input
gradient, and `torch.cdist`'s backward has no derivative on CUDA. So the distances are a custom
autograd function (`_L1Distances`): cdist computes the forward only, and the backward is the
explicit formula grad M_i = sum_j (g_ij + g_ji) sign(M_i - M_j) written in plain ops (in blocks
of rows, bounding the temporary B x B x kernels x C signs), which autograd can differentiate
again on every device. Only M is kept for the backward. The layer's forward + backward at batch
256 on 128 features (ring8's D), one CPU thread, measured under load: 349 ms, against 571 ms for
version 1 (cdist with its own backward) and 834 ms for a plain broadcast |M_i - M_j| (which also
has a double backward but keeps every difference for it).

Conv features [B, C, H, W]: o is broadcast over the H x W positions as B extra channels, so the
conv head (a conv whose kernel covers the whole final map) reads it like any other channel. MLP
features [B, F] get B extra features.

Capacity (parameters; G is unchanged): on digits 16 px (width 32) D grows from 34,305 to 68,505
(2.0x; version 1, on the flattened 64x4x4 map, gave 548,005); on a 32 px cell (width 64) from
662,529 to 792,729 (1.20x). `capacity = "matched"` lowers the kernel count to the largest that
keeps D within +10% of its parameters before the layer: 10 kernels on digits 16 px (D 37,725,
1.10x), 50 on 32 px width 64 (D 727,629, 1.10x). `tests/test_capacity.py` checks these.

The loop sends real and fake samples through D as separate batches, so o measures the diversity
within a batch of real or of generated samples, as in the paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from bench.trickapi.trick import TrickError
from tricks import Trick, register_trick

_BLOCK_ELEMENTS = 1 << 22  # differences materialised per block of rows (16 MB in float32)


class _L1Distances(torch.autograd.Function):
    """[K, N, C] -> [K, N, N] pairwise L1 distances. Forward: torch.cdist (fast; its own backward
    is never used). Backward: the explicit formula grad m_i = sum_j (g_ij + g_ji) sign(m_i - m_j)
    in plain ops, in blocks of rows, so it is itself differentiable: a double backward exists on
    every device (torch.cdist's backward has none on CUDA) and only m is kept for it."""

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(m)
        return torch.cdist(m, m, p=1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (m,) = ctx.saved_tensors
        both = grad + grad.transpose(1, 2)
        k, n, c = m.shape
        rows = max(1, _BLOCK_ELEMENTS // max(1, k * n * c))
        return torch.cat([torch.einsum("kij,kijc->kic", both[:, i:i + rows],
                                       torch.sign(m[:, i:i + rows, None] - m[:, None]))
                          for i in range(0, n, rows)], dim=1)


def l1_distances(m: torch.Tensor) -> torch.Tensor:
    """m [N, K, C] -> ||m_i,k - m_j,k||_1 as [N, N, K], with a double backward on every device."""
    return _L1Distances.apply(m.permute(1, 0, 2).contiguous()).permute(1, 2, 0)


class MinibatchDiscrimination(nn.Module):
    def __init__(self, in_features: int, n_kernels: int = 100, kernel_dim: int = 5,
                 init_std: float = 0.05, data_init: bool = True):
        super().__init__()
        self.in_features, self.n_kernels, self.kernel_dim = in_features, n_kernels, kernel_dim
        self.init_std, self.data_init = init_std, data_init
        self.theta = nn.Parameter(torch.empty(in_features, n_kernels, kernel_dim))
        self.log_scale = nn.Parameter(torch.empty(n_kernels, kernel_dim))
        self.bias = nn.Parameter(torch.empty(n_kernels))
        self.register_buffer("calibrated", torch.tensor(False))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.theta, 0.0, self.init_std)
        nn.init.zeros_(self.log_scale)
        nn.init.zeros_(self.bias)
        self.calibrated.fill_(not self.data_init)

    @property
    def T(self) -> torch.Tensor:
        """The weight-normalised kernel tensor W [A, K, C]."""
        return self.theta * (self.log_scale.exp() / self.theta.norm(dim=0))

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global average pooling of conv features; MLP features as they are: [B, A]."""
        f = x.mean(dim=tuple(range(2, x.dim()))) if x.dim() > 2 else x
        if f.shape[1] != self.in_features:
            raise RuntimeError(f"minibatch discrimination expects {self.in_features} features "
                               f"per sample, got {f.shape[1]}")
        return f

    def _distances(self, x: torch.Tensor) -> torch.Tensor:
        """L1 distances ||M_{i,b} - M_{j,b}||: [B_i, B_j, K]."""
        m = torch.einsum("na,akc->nkc", self.pooled(x), self.T)      # M: [B, K, C]
        return l1_distances(m)

    def closeness(self, x: torch.Tensor) -> torch.Tensor:
        """o(x_i) for every sample: [B, n_kernels]."""
        # j == i is excluded by subtracting its term: the distance of a row to itself is exactly
        # 0 (cdist sums |a - a|), so exp(-0) = 1, with zero gradient (sign(0) = 0)
        return torch.exp(-self._distances(x)).sum(dim=1) - 1.0 + self.bias

    @torch.no_grad()
    def _calibrate(self, x: torch.Tensor) -> None:
        b = x.shape[0]
        dist = self._distances(x) + 1e6 * torch.eye(b, device=x.device, dtype=x.dtype)[..., None]
        mean_min = 0.5 * dist.min(dim=1).values.mean(dim=0)           # [K]
        self.log_scale.sub_(mean_min.clamp_min(1e-12).log()[:, None])
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


def added_params(in_features: int, n_kernels: int, kernel_dim: int, head_inputs: int) -> int:
    """Parameters the layer adds: theta, log_scale, bias, and the head's weights for the new
    channels (`head_inputs` weights per input channel)."""
    return n_kernels * (in_features * kernel_dim + kernel_dim + 1 + head_inputs)


@register_trick
class MinibatchDiscriminationTrick(Trick):
    name = "minibatch_discrimination"
    summary = ("D's head also sees each sample's L1 closeness to the rest of its batch "
               "(100 kernels on globally pooled features; capacity=matched: fewer kernels, "
               "D within +10%)")
    source = "Salimans et al. 2016"
    version = 2  # v1: kernels on the flattened conv map, no weight norm, cdist

    @dataclass(frozen=True)
    class Params:
        n_kernels: int = 100
        kernel_dim: int = 5
        init_std: float = 0.05
        data_init: bool = True
        capacity: Literal["free", "matched"] = "free"

        def validate(self) -> None:
            if self.n_kernels < 1 or self.kernel_dim < 1 or self.init_std <= 0:
                raise ValueError("need n_kernels >= 1, kernel_dim >= 1, init_std > 0")

    def build(self, nets, ctx):
        D = nets.D
        blocks = getattr(D, "blocks", None)
        if not blocks or not hasattr(D, "append_feature_layer"):
            raise TrickError(f"{self.name} needs a D with `blocks` and `append_feature_layer`")
        in_features = D.feature_channels
        n_kernels = self.p.n_kernels
        if self.p.capacity == "matched":
            head_inputs = D.head.weight[0, 0].numel() if hasattr(D.head, "weight") else 1
            budget = 0.1 * sum(p.numel() for p in D.parameters())
            per_kernel = added_params(in_features, 1, self.p.kernel_dim, head_inputs)
            n_kernels = min(n_kernels, math.floor(budget / per_kernel))
            if n_kernels < 1:
                raise TrickError(f"{self.name}: capacity=matched leaves no kernel within +10% "
                                 f"of D's parameters")
        layer = MinibatchDiscrimination(in_features, n_kernels, self.p.kernel_dim,
                                        self.p.init_std, self.p.data_init)
        D.append_feature_layer(layer, n_kernels)
        return nets
