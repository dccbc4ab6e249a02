"""Class labels: a class-conditional G and a projection discriminator ("use labels if you have
them": Goodfellow 2016, NIPS tutorial, section 4.1; ganhacks #16; Odena et al. 2017).

* G: a learned embedding of the label (`embed_dim`, default: the number of classes) is
  concatenated to z (Mirza & Osindero 2014): `G.mapping` becomes [z, embed(y)] and G's first
  layer is rebuilt for the wider input (re-drawn N(0, 0.02), the baseline's init). Where G has
  batch norm (the `batch_norm` trick), each of G's BN layers is followed by a class-conditional
  gain and bias, x * (1 + gamma_y) + beta_y with gamma, beta starting at 0: conditional batch
  norm as BigGAN's `ccbn` writes it (de Vries et al. 2017; Brock et al. 2019).
* D: the projection discriminator of Miyato & Koyama 2018 ("cGANs with Projection
  Discriminator", eq. 3): D(x, y) = head(phi(x)) + <embed(y), phi_pool(x)>, with phi(x) the
  features D's head reads and phi_pool their global sum over positions (the authors' code,
  `sngan_projection`: `torch.sum(h, dim=(2, 3))` then an embedding `l_y`, Xavier init). The
  head is wrapped, so D keeps its named attachment points.

Labels reach the nets through the `condition(y)` hook: the loop calls it with the labels of each
real batch (the step's fakes are drawn for the same labels, row by row, as StyleGAN2-ADA draws
G's labels from the training set's label distribution, so penalties that mix real and fake rows
(WGAN-GP's interpolates) or read real rows (R1, DRAGAN) see each row's label), and with
uniformly drawn labels before G is sampled for scoring, so class coverage stays comparable with
unconditional cells. A G batch smaller than the label batch (path length's half batch) uses the
first rows' labels.

A check on digits 16x16 (800 steps, batch 64, seed 0): of 100 samples drawn for each class,
69% are classified as that class by the suite's digit classifier (chance: 10%).

Applies to images with one label per sample (digits, MNIST, Fashion-MNIST, CIFAR-10: `needs =
{"class_labels"}`); a grid asking for it on 2-D mixtures or on a stacked set (three labels per
image) stores the cell as `not-applicable` with the reason.
Builds after the layer tricks (so it sees batch norm and wraps the head that minibatch layers
rebuilt) and before spectral norm (which then covers the new conv/linear layers).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tricks import INSERT, Nets, Trick, TrickError, register_trick

_REPLACES = "it replaces {} with its own architecture, which has no label input"


class Labels:
    """The labels of the batch the nets are about to see, shared by every conditional module
    (and by deep copies of them: an EMA of G or a cloned D follows the same labels)."""

    def __init__(self) -> None:
        self.y: torch.Tensor | None = None

    def __deepcopy__(self, memo) -> "Labels":
        return self

    def take(self, n: int) -> torch.Tensor:
        if self.y is None:
            raise TrickError("conditional: the nets ran before any labels were given")
        if n > len(self.y):
            raise TrickError(f"conditional: a batch of {n} but labels for {len(self.y)}")
        return self.y[:n]


class LabelConcat(nn.Module):
    """G's mapping: [z, embed(y)]."""

    def __init__(self, labels: Labels, num_classes: int, dim: int):
        super().__init__()
        self.labels, self.embed = labels, nn.Embedding(num_classes, dim)
        nn.init.normal_(self.embed.weight, 0.0, 1.0)  # on the scale of z ~ N(0, I)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.cat([z, self.embed(self.labels.take(len(z)))], dim=1)


class ClassAffine(nn.Module):
    """x * (1 + gamma_y) + beta_y per channel: the conditional part of conditional batch norm."""

    def __init__(self, labels: Labels, num_classes: int, channels: int):
        super().__init__()
        self.labels = labels
        self.gain, self.bias = nn.Embedding(num_classes, channels), nn.Embedding(num_classes, channels)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.labels.take(len(x))
        shape = (len(x), -1) + (1,) * (x.dim() - 2)
        return x * (1 + self.gain(y).view(shape)) + self.bias(y).view(shape)


class ProjectionHead(nn.Module):
    """head(h) + <embed(y), sum over positions of h> (Miyato & Koyama 2018)."""

    def __init__(self, head: nn.Module, labels: Labels, num_classes: int, channels: int):
        super().__init__()
        self.head, self.labels = head, labels
        self.embed = nn.Embedding(num_classes, channels)
        nn.init.xavier_uniform_(self.embed.weight)

    def projection(self, h: torch.Tensor) -> torch.Tensor:
        pooled = h.sum(dim=(2, 3)) if h.dim() == 4 else h.flatten(1)
        return (self.embed(self.labels.take(len(h))) * pooled).sum(1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        out = self.head(h)
        return out + self.projection(h).view(len(h), *([1] * (out.dim() - 1)))


def _widen_first_layer(G: nn.Module, extra: int) -> None:
    """Rebuild G's first layer (the `main` of its first stage) for `extra` more inputs."""
    stage = G.blocks[0]
    old = stage.main
    if isinstance(old, nn.ConvTranspose2d):
        new = nn.ConvTranspose2d(old.in_channels + extra, old.out_channels, old.kernel_size,
                                 old.stride, old.padding, bias=old.bias is not None)
    elif isinstance(old, nn.Linear):
        new = nn.Linear(old.in_features + extra, old.out_features, bias=old.bias is not None)
    else:
        raise TrickError(f"conditional: G's first layer is a {type(old).__name__}, "
                         f"not a linear or transposed conv it can widen")
    nn.init.normal_(new.weight, 0.0, 0.02)
    if new.bias is not None:
        nn.init.zeros_(new.bias)
    stage.main = new.to(old.weight.device)
    in_shape = getattr(G.synthesis, "in_shape", None)
    if in_shape:
        G.synthesis.in_shape = (in_shape[0] + extra, *in_shape[1:])


@register_trick
class Conditional(Trick):
    name = "conditional"
    summary = ("class-conditional G (label embedding concatenated to z; conditional BN where G "
               "has BN) and a projection discriminator")
    source = "Mirza & Osindero 2014; Miyato & Koyama 2018; de Vries et al. 2017"
    applies_to = frozenset({"image"})
    needs = frozenset({"class_labels"})
    build_order = INSERT + 5  # after the layer tricks, before spectral norm
    excludes = {
        "progressive_growing": _REPLACES.format("G and D"),
        "stylegan": _REPLACES.format("G (its mapping network takes z only)"),
        "virtual_batch_norm": "its reference batch would need labels of its own; conditional "
                              "batch norm is built on plain batch norm",
    }

    @dataclass(frozen=True)
    class Params:
        embed_dim: int = 0  # G's label embedding; 0: the number of classes
        g_conditional_bn: bool = True  # class gains and biases after G's batch norm layers

        def validate(self) -> None:
            if self.embed_dim < 0:
                raise ValueError("embed_dim must be >= 0")

    def __init__(self, params=None):
        super().__init__(params)
        self.labels = Labels()

    def build(self, nets: Nets, ctx) -> Nets:
        k = ctx.num_classes
        if not k:
            raise TrickError("conditional needs a dataset with one class label per sample")
        G, D = nets.G, nets.D
        if not isinstance(G.mapping, nn.Identity):
            raise TrickError("conditional: G already has a mapping network")
        dim = self.p.embed_dim or k
        device = next(G.parameters()).device
        _widen_first_layer(G, dim)
        G.mapping = LabelConcat(self.labels, k, dim).to(device)
        G.w_dim = G.z_dim + dim
        if self.p.g_conditional_bn:
            for stage in G.blocks:
                if isinstance(stage.norm, nn.modules.batchnorm._BatchNorm):
                    # wraps the batch_norm trick's layer in place (Stage.attach refuses a taken
                    # point; this extends that layer rather than replacing it)
                    affine = ClassAffine(self.labels, k, stage.channels).to(device)
                    stage.norm = nn.Sequential(stage.norm, affine)
        D.head = ProjectionHead(D.head, self.labels, k, D.feature_channels).to(device)
        return nets

    def condition(self, y: torch.Tensor) -> None:
        self.labels.y = y
