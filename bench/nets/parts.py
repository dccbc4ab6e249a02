"""Building blocks shared by all networks: a Stage with named attachment points, and the
generator/discriminator shells that expose `mapping`, `synthesis`, `blocks`, `features`, `head`.

Architecture tricks edit these named points (`stage.norm`, `stage.dropout`, `stage.post`,
`D.head` via `D.make_head`, `G.mapping`), never layers by index.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from bench.trickapi.trick import TrickError


class Stage(nn.Module):
    """main -> norm -> act -> dropout -> post. norm, dropout and post start as Identity."""

    POINTS = ("main", "norm", "act", "dropout", "post")

    def __init__(self, main: nn.Module, act: nn.Module, channels: int,
                 resolution: int | None = None, is_input: bool = False):
        super().__init__()
        self.main, self.norm, self.act = main, nn.Identity(), act
        self.dropout, self.post = nn.Identity(), nn.Identity()
        self.channels, self.resolution, self.is_input = channels, resolution, is_input

    def __setattr__(self, name: str, value) -> None:
        super().__setattr__(name, value)
        if name in Stage.POINTS:
            # Identity points are skipped: calling them costs more than a small MLP layer.
            chain = [getattr(self, p) for p in Stage.POINTS if p in self._modules]
            object.__setattr__(self, "_chain", [m for m in chain if type(m) is not nn.Identity])

    def attach(self, point: str, layer: nn.Module, owner: str) -> None:
        """Install `layer` at a free attachment point ('norm', 'dropout' or 'post'). Two tricks
        silently overwriting each other's layer would be a wrong cell, so a taken point is an
        error naming the `owner` (the trick) that asked."""
        if point not in ("norm", "dropout", "post"):
            raise ValueError(f"Stage has no attachment point '{point}'")
        current = getattr(self, point)
        if not isinstance(current, nn.Identity):
            raise TrickError(f"{owner}: Stage.{point} already holds {type(current).__name__} "
                             f"(installed by another trick)")
        setattr(self, point, layer.to(next(self.parameters()).device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for module in self._chain:
            x = module(x)
        return x


class Synthesis(nn.Module):
    """The part of G after the mapping: stages, then an output layer. `in_shape` reshapes the
    flat w for the first layer (e.g. (z, 1, 1) for a transposed conv), so synthesis takes w."""

    def __init__(self, blocks: list[Stage], to_out: nn.Module,
                 in_shape: tuple[int, ...] | None = None):
        super().__init__()
        self.blocks, self.to_out, self.in_shape = nn.ModuleList(blocks), to_out, in_shape

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        h = w.view(w.shape[0], *self.in_shape) if self.in_shape else w
        for block in self.blocks:
            h = block(h)
        return self.to_out(h)


class Generator(nn.Module):
    """G(z) = synthesis(mapping(z)). `mapping` is Identity unless a trick installs one."""

    def __init__(self, synthesis: nn.Module, z_dim: int, out_shape: tuple[int, ...]):
        super().__init__()
        self.mapping: nn.Module = nn.Identity()
        self.synthesis = synthesis
        self.z_dim, self.w_dim, self.out_shape = z_dim, z_dim, out_shape

    @property
    def blocks(self) -> nn.ModuleList:
        return self.synthesis.blocks

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.synthesis(self.mapping(z))


class Discriminator(nn.Module):
    """D(x) = head(pre_head(features(x))), returned as [B] (one output) or [B, k] (k outputs).
    No sigmoid: D returns logits; losses decide how to read them."""

    def __init__(self, blocks: list[Stage], head_factory: Callable[[int], nn.Module],
                 feature_channels: int):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self._head_factory = head_factory
        self.feature_channels = feature_channels
        self.pre_head = nn.Sequential()  # layers that append statistics to the features
        self.head = head_factory(feature_channels)

    def make_head(self, in_channels: int) -> nn.Module:
        """A freshly initialised head for features with `in_channels` channels."""
        head = self._head_factory(in_channels)
        init_weights(head)
        return head.to(next(self.parameters()).device)

    def append_feature_layer(self, layer: nn.Module, extra_channels: int) -> None:
        """Insert `layer` before the head; it adds `extra_channels` channels (dim 1) to the
        features, so the head is rebuilt. Layers stack in the order they are appended."""
        self.pre_head.append(layer.to(next(self.parameters()).device))
        self.feature_channels += extra_channels
        self.head = self.make_head(self.feature_channels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's output (before any pre-head layer): feature matching reads this."""
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(self.pre_head(self.features(x))).flatten(1)
        return out.squeeze(1) if out.shape[1] == 1 else out


ORTHOGONAL_GAIN = 1.4  # the unrolled-GAN notebook's tf.orthogonal_initializer(gain=1.4)


def init_weights(module: nn.Module, std: float = 0.02, scheme: str = "normal") -> None:
    """Conv/linear weights N(0, std) (DCGAN), or orthogonal with gain 1.4; biases 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            if scheme == "orthogonal":
                nn.init.orthogonal_(m.weight, gain=ORTHOGONAL_GAIN)
            else:
                nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
