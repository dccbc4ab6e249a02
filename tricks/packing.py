"""Packing (PacGAN): D judges m samples at once. Lin, Khetan, Fanti and Oh 2018, "PacGAN: The
power of two samples in generative adversarial networks" (NeurIPS), section 3; reference code
github.com/fjxmlzn/PacGAN, `synthetic_data_experiments/PacGAN/pacgan/bricks.py`
(`PacGAN.compute_losses`: G is applied to m independent latent batches and the m outputs are
concatenated along the feature axis, `tensor.concatenate(x_tildes, axis=1)`; the real data set
`datasets.py: GaussianPackingMixture` stacks m independent draws the same way, `np.hstack`) and
`2DRing_GAN&PacGAN/pacgan_task.py` (D's first layer takes `num_xdim * num_packing` inputs).

What it changes:
- `batch_multiple`: every D and G update draws m x batch_size real samples and latents (the
  batch drawn m times), so D still sees `batch_size` inputs per phase, each made of m samples:
  [m*B, d] -> [B, m*d] for an MLP, [m*B, C, H, W] -> [B, m*C, H, W] for a convolutional D (the
  channel axis, as the paper's image experiments). Packed input i holds drawn samples
  i*m .. i*m + m - 1: the draws are independent, so this is the same distribution as the
  reference code's column-wise stacking of m separate batches.
- `build`: D's input stage gets a `Pack(m, layer)` around its first layer, whose input width
  (features or channels) is m times the data's, freshly drawn with the cell's weight init. With
  m = 1 D is left exactly as it is (no layer redrawn, no random number used), so a cell with
  packing at m = 1 computes what the baseline computes.

Every layer after the first sees packed inputs, so tricks that act on D's features (minibatch
stddev/discrimination, batch norm, dropout, spectral norm, D2GAN's clone of D) act on packed
inputs; tricks that act on D's input samples (instance noise) act on each sample before it is
packed, as noise on the packed input would. How it combines with each trick that touches D's
input or architecture is stated as data in `COMBINES` (and `excludes` for the ones that do not).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from bench.nets.parts import init_weights
from tricks import Trick, TrickError, register_trick


class Pack(nn.Module):
    """Reshape D's input [m*B, d, ...] to [B, m*d, ...] (m consecutive samples side by side on the
    feature/channel axis), then apply `layer`."""

    def __init__(self, m: int, layer: nn.Module):
        super().__init__()
        self.m, self.layer = m, layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n % self.m:
            raise TrickError(f"packing: D got {n} samples, not a multiple of m = {self.m}")
        return self.layer(x.reshape(n // self.m, self.m * x.shape[1], *x.shape[2:]))

    def extra_repr(self) -> str:
        return f"m={self.m}"


def _widened(layer: nn.Module, m: int) -> nn.Module:
    """A fresh copy of `layer` (a Linear or Conv2d) that takes m times its input width."""
    if isinstance(layer, nn.Linear):
        return nn.Linear(m * layer.in_features, layer.out_features, bias=layer.bias is not None)
    if isinstance(layer, nn.Conv2d):
        return nn.Conv2d(m * layer.in_channels, layer.out_channels, layer.kernel_size,
                         stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                         groups=layer.groups, bias=layer.bias is not None,
                         padding_mode=layer.padding_mode)
    raise TrickError(f"packing: D's first layer is a {type(layer).__name__}; packing widens a "
                     f"Linear or Conv2d input layer")


# How packing combines with the tricks that touch D's input or architecture (documentation as
# data; tests/test_packing.py checks each name is a registered trick and that the excluded ones
# are exactly `excludes`).
COMBINES = {
    "instance_noise": "composes: noise is added to each sample before packing (the same as "
                      "noise on the packed input)",
    "minibatch_stddev": "composes: the statistic is over the batch of packed inputs",
    "minibatch_discrimination": "composes: the kernels compare packed inputs",
    "batch_norm": "composes: D's normalization layers see packed features",
    "dropout": "composes: dropout acts on packed features",
    "spectral_norm": "composes: it reparametrizes after packing's build, so it covers the "
                     "widened input layer",
    "dual_discriminator": "composes: D2GAN clones the packed D (its own fresh weights)",
    "self_attention": "composes: attention sees packed feature maps",
    "stylegan": "composes: it replaces G only",
    "relativistic": "composes: it pairs packed real and fake inputs",
    "feature_matching": "composes: G matches the mean features of packed inputs",
    "unrolled": "composes: the unrolled D copies are packed, and their updates draw m x batch",
    "progressive_growing": "excluded: it replaces D's architecture, so packing's input layer "
                           "would be lost",
    "wgan_gp": "excluded: its interpolates and gradient norms are per drawn sample here, not per "
               "packed input, so its 1-Lipschitz target would not be WGAN-GP's",
    "gradient_penalty": "excluded: its gradient norms are per drawn sample here, not per packed "
                        "input, which changes the penalty's scale (not defined by either paper)",
    "conditional": "excluded: a packed input carries m class labels; D's conditioning takes one",
}


@register_trick
class Packing(Trick):
    name = "packing"
    summary = "D judges m samples at once (concatenated on the feature/channel axis)"
    source = "Lin et al. 2018 (PacGAN)"
    slots = ("batch_multiple",)
    excludes = {k: v.removeprefix("excluded: ") for k, v in COMBINES.items()
                if v.startswith("excluded")}
    applies_to = frozenset({"2d", "image"})

    @dataclass(frozen=True)
    class Params:
        m: int = 2  # PacGAN2, the paper's main setting

        def validate(self) -> None:
            if isinstance(self.m, bool) or self.m < 1:
                raise ValueError(f"m must be an integer >= 1, got {self.m!r}")

    def batch_multiple(self) -> int:
        return self.p.m

    def build(self, nets, ctx):
        if self.p.m == 1:
            return nets  # exactly the baseline's D (no layer redrawn, no random number drawn)
        stage = nets.D.blocks[0]
        main = stage.main
        if isinstance(main, nn.Sequential) and len(main) and isinstance(main[0], (nn.Linear,
                                                                                   nn.Conv2d)):
            main[0] = _widened(main[0], self.p.m)
            init_weights(main[0], scheme=ctx.net.init)
        else:
            main = _widened(main, self.p.m)
            init_weights(main, scheme=ctx.net.init)
        stage.main = Pack(self.p.m, main.to(ctx.device))
        return nets
