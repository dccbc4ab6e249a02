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

The closeness sums (version 3): a custom autograd function (`_PairCloseness`) computes
s_i,b = sum_j exp(-||M_{i,b} - M_{j,b}||_L1) directly, in tiles of rows that stay in the CPU's
cache, and visits each unordered pair once (the distance is symmetric; in the backward
grad M_i = -sum_j e_ij (u_i + u_j) sign(M_i - M_j), with e = exp(-distance) and u the upstream
gradient of s, the sign is antisymmetric, so one tile updates both rows and columns). The
[B, B, kernels] distances are never stored for autograd: the forward keeps e of the visited
pairs (about B^2 / 2 x kernels values, up to `_SAVE_ELEMENTS`; above that the backward
recomputes them from M). When a penalty differentiates D's input gradient (gradient_penalty,
relativistic, wgan_gp: create_graph), the backward runs as plain differentiable ops instead, so
a double backward exists on every device (torch.cdist's backward has none on CUDA). It is the
same sum as version 2 (`l1_distances` + exp + sum, still used by the data-dependent init) in
another order: `tests/test_minibatch_discrimination.py` checks values, gradients and the double
backward against it. Speed, the layer's closeness forward + backward at batch 512, 100 kernels
x 5 dims, one CPU thread (`benchmarks/minibatch_discrimination_speed.py`, CPU seconds, the
machine shared with other work): see the benchmark's docstring.

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
_TILE_ELEMENTS = 1 << 20  # pair differences per tile of the closeness sums (4 MB in float32)
_SAVE_ELEMENTS = 1 << 26  # e kept for the backward up to this many values (256 MB in float32)


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


def _tile_rows(m: torch.Tensor) -> int:
    k, c, n = m.shape
    return max(1, _TILE_ELEMENTS // max(1, k * c * n))


def _far(dtype: torch.dtype) -> float:
    """Distances beyond this count as this: exp(-d) stays a normal number (float32: 86.3,
    exp(-86.3) = 3.2e-38, one e above the smallest normal). Beyond it exp yields subnormals or
    0, which the CPU's exp computes ~10-50x slower, and training's distances reach them; the
    change per pair is below 3.2e-38, against the j = i term 1 of every sum."""
    return -math.log(torch.finfo(dtype).tiny) - 1.0


def _exp_neg(d: torch.Tensor) -> torch.Tensor:
    """exp(-min(d, far)) in place."""
    return d.clamp_(max=_far(d.dtype)).neg_().exp_()


def _pair_diff(m: torch.Tensor, i: int, r: int) -> torch.Tensor:
    """Rows i..i+r against columns i..n of m [K, C, N]: differences [K, C, r, n-i]."""
    return m[:, :, i:i + r, None] - m[:, :, None, i:]


class _PairCloseness(torch.autograd.Function):
    """m [K, C, N] -> s [K, N], s_ki = sum_j exp(-||m_k.i - m_k.j||_1) (j = i included).
    Each unordered pair once: a tile holds rows i..i+r against columns i..n; its own r x r
    square holds both orders and counts for its rows only, the rest counts for rows and
    columns."""

    @staticmethod
    def forward(ctx, m: torch.Tensor) -> torch.Tensor:
        n, r = m.shape[2], _tile_rows(m)
        keep = m.shape[0] * n * (n + r) // 2 <= _SAVE_ELEMENTS
        s = m.new_zeros(m.shape[0], n)
        saved = []
        for i in range(0, n, r):
            e = _exp_neg(_pair_diff(m, i, r).abs_().sum(1))             # [K, r, n-i]
            s[:, i:i + r] += e.sum(2)
            s[:, i + r:] += e[:, :, r:].sum(1)
            if keep:
                saved.append(e)
        ctx.save_for_backward(m, *saved)
        return s

    @staticmethod
    def backward(ctx, u: torch.Tensor) -> torch.Tensor:
        m, *saved = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: differentiable ops (a double backward)
            return _closeness_grad(m, u)
        n, r = m.shape[2], _tile_rows(m)
        g = torch.zeros_like(m)
        for t, i in enumerate(range(0, n, r)):
            diff = _pair_diff(m, i, r)
            e = saved[t] if saved else _exp_neg(diff.abs().sum(1))
            w = e * (u[:, i:i + r, None] + u[:, None, i:])
            signed = diff.sign_().mul_(w[:, None])
            g[:, :, i:i + r] -= signed.sum(3)
            g[:, :, i + r:] += signed[..., r:].sum(2)  # sign(m_j - m_i) = -sign(m_i - m_j)
        return g


def _closeness_grad(m: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """grad m_kci = -sum_j e_kij (u_ki + u_kj) sign(m_kci - m_kcj) in plain out-of-place ops, so
    autograd can differentiate it again; tiles of rows against every column."""
    n, r = m.shape[2], _tile_rows(m)
    parts = []
    for i in range(0, n, r):
        diff = m[:, :, i:i + r, None] - m[:, :, None, :]
        e = torch.exp(-diff.abs().sum(1).clamp(max=_far(m.dtype)))
        w = e * (u[:, i:i + r, None] + u[:, None, :])
        parts.append(-(torch.sign(diff) * w[:, None]).sum(3))
    return torch.cat(parts, dim=2)


def pair_closeness(m: torch.Tensor) -> torch.Tensor:
    """m [N, K, C] -> sum_j exp(-||m_i,k - m_j,k||_1) as [N, K] (j = i included)."""
    return _PairCloseness.apply(m.permute(1, 2, 0).contiguous()).t()


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
        """L1 distances ||M_{i,b} - M_{j,b}||: [B_i, B_j, K] (the data-dependent init's
        nearest neighbours; version 2's closeness)."""
        m = torch.einsum("na,akc->nkc", self.pooled(x), self.T)      # M: [B, K, C]
        return l1_distances(m)

    def closeness(self, x: torch.Tensor) -> torch.Tensor:
        """o(x_i) for every sample: [B, n_kernels]."""
        m = torch.einsum("na,akc->nkc", self.pooled(x), self.T)      # M: [B, K, C]
        # j == i is excluded by subtracting its term: the distance of a row to itself is exactly
        # 0 (sum of |a - a|), so exp(-0) = 1, with zero gradient (sign(0) = 0)
        return pair_closeness(m) - 1.0 + self.bias

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
    # v1: kernels on the flattened conv map, no weight norm, cdist; v2: the same sums as v3 in
    # another float order (v3 is ~3x faster: pairs once, in cache-sized tiles)
    version = 3

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
