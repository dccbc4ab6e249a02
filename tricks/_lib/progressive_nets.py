"""ProGAN networks (Karras et al. 2018, "Progressive Growing of GANs for Improved Quality,
Stability, and Variation", section 2 and table 2) that always speak full resolution, so the
training loop never knows the nets are growing:

* G renders at its current resolution and upsamples the image by nearest neighbour to the full
  size; D average-pools its input down to its current resolution before `fromRGB`.
* While a new resolution fades in (alpha 0 -> 1), G's output is lerp(upsample(toRGB_old(h_old)),
  toRGB_new(block_new(h_old)), alpha) and D's entry is lerp(fromRGB_old(pool(x)),
  block_new(fromRGB_new(x)), alpha), as in the paper's figure 2.

G stage 0: [pixel norm of z] -> dense to base x base -> lrelu [-> PN] -> conv3x3; every later
stage: 2x nearest upsample -> conv3x3 -> lrelu [-> PN] -> conv3x3; each stage's `act` is
lrelu(0.2) [-> PN], so batch norm (or any G normalization) would go into the free `Stage.norm`.
D block: conv3x3 -> lrelu -> conv3x3 -> 2x2 average pool, `act` lrelu(0.2) (the official code's
fused conv+downscale). D's head (`D.make_head`): conv3x3 -> lrelu -> dense (base x base conv) ->
lrelu -> linear to one logit; minibatch stddev, the paper's last D addition, is its own trick
(`minibatch_stddev`, through `D.append_feature_layer`). toRGB/fromRGB are 1x1 convs per resolution.

The growth state (stage, alpha) lives in one `GrowthState` shared by G, D and any deep copy of
them (so a D copied by another trick, e.g. dual_discriminator's D2 or unrolling's lookahead D,
follows the same schedule); G and D also carry it in their state dicts (`_extra_state`), so a net
loaded from a checkpoint samples at the stage it was saved at without any `on_step` call.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.nets.parts import Discriminator, Generator, Stage, Synthesis
from tricks._lib.karras_layers import (PixelNorm, channel_plan, conv, downsample, linear,
                                       resolution_plan, upsample)


class GrowthState:
    """Current stage (index into the resolution plan) and fade-in alpha of the newest stage."""

    def __init__(self, stage: int, alpha: float = 1.0):
        self.stage, self.alpha = stage, alpha

    def set(self, stage: int, alpha: float) -> None:
        self.stage, self.alpha = int(stage), float(alpha)

    def __deepcopy__(self, memo) -> "GrowthState":
        return self  # copies of the nets follow the one schedule

    def __repr__(self) -> str:
        return f"GrowthState(stage={self.stage}, alpha={self.alpha:.4g})"


class _Grows:
    """Mixin for the growing modules: the shared state, checkpointed as module extra state."""

    growth: GrowthState

    def get_extra_state(self) -> dict:
        return {"stage": self.growth.stage, "alpha": self.growth.alpha}

    def set_extra_state(self, state: dict) -> None:
        self.growth.set(state["stage"], state["alpha"])


def _act(pixel_norm: bool) -> nn.Module:
    return nn.Sequential(nn.LeakyReLU(0.2), PixelNorm()) if pixel_norm else nn.LeakyReLU(0.2)


class ProgressiveSynthesis(_Grows, Synthesis):
    """`blocks[k]` renders resolution plan[k]; `to_out` is the full-resolution toRGB, `to_rgb_low`
    the toRGBs of the lower resolutions."""

    def __init__(self, blocks: list[Stage], to_rgb: list[nn.Module], growth: GrowthState,
                 output: str):
        super().__init__(blocks, to_rgb[-1])
        self.to_rgb_low = nn.ModuleList(to_rgb[:-1])
        self.growth, self.output = growth, output

    def to_rgb(self, k: int) -> nn.Module:
        return self.to_out if k == len(self.blocks) - 1 else self.to_rgb_low[k]

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        s, alpha = self.growth.stage, self.growth.alpha
        h = prev = w
        for block in self.blocks[: s + 1]:
            prev, h = h, block(h)
        img = self.to_rgb(s)(h)
        if s > 0 and alpha < 1.0:
            low = upsample(self.to_rgb(s - 1)(prev), 2)
            img = torch.lerp(low, img, alpha)
        img = upsample(img, 2 ** (len(self.blocks) - 1 - s))
        return torch.tanh(img) if self.output == "tanh" else img


class ProgressiveDiscriminator(_Grows, Discriminator):
    """`blocks` run from full resolution down (blocks[0] takes the full-resolution features and is
    the input stage); at stage s only the last s blocks are in use, entered through
    `from_rgb[s]` (from_rgb[k] reads resolution plan[k])."""

    def __init__(self, blocks: list[Stage], head_factory, feature_channels: int,
                 from_rgb: list[nn.Module], growth: GrowthState):
        super().__init__(blocks, head_factory, feature_channels)
        self.from_rgb = nn.ModuleList(from_rgb)
        self.growth = growth

    def make_head(self, in_channels: int) -> nn.Module:
        # the head factory initialises its layers itself (He / equalized), no DCGAN re-init
        return self._head_factory(in_channels).to(next(self.parameters()).device)

    def entry(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Features where the image enters at the current stage (after the fade-in blend) and
        the index of the next block to run."""
        s, alpha = self.growth.stage, self.growth.alpha
        n = len(self.blocks)
        x = downsample(x, 2 ** (n - s))  # full resolution -> plan[s]
        h = self.from_rgb[s](x)
        if s == 0:
            return h, n
        h = self.blocks[n - s](h)
        if alpha < 1.0:
            h = torch.lerp(self.from_rgb[s - 1](downsample(x, 2)), h, alpha)
        return h, n - s + 1

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h, start = self.entry(x)
        for block in self.blocks[start:]:
            h = block(h)
        return h


def progressive_nets(z_dim: int, width: int, shape: tuple[int, int, int], *, pixel_norm: bool,
                     equalized: bool, output: str, d_width: int | None = None
                     ) -> tuple[Generator, ProgressiveDiscriminator]:
    """G and D for `shape` (C, H, W), fully grown (set the shared `G.synthesis.growth`). D has
    `d_width` channels at full resolution (default: `width`, like G)."""
    c, res, _ = shape
    plan = resolution_plan(res)
    ch = channel_plan(width, len(plan))
    b, eq = plan[0], equalized
    growth = GrowthState(len(plan) - 1)

    first = [PixelNorm()] if pixel_norm else []
    first += [linear(z_dim, ch[0] * b * b, equalized=eq), nn.Unflatten(1, (ch[0], b, b)),
              _act(pixel_norm), conv(ch[0], ch[0], 3, equalized=eq)]
    g_blocks = [Stage(nn.Sequential(*first), _act(pixel_norm), ch[0], b)]
    for k in range(1, len(plan)):
        main = nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"),
                             conv(ch[k - 1], ch[k], 3, equalized=eq), _act(pixel_norm),
                             conv(ch[k], ch[k], 3, equalized=eq))
        g_blocks.append(Stage(main, _act(pixel_norm), ch[k], plan[k]))
    to_rgb = [conv(ch[k], c, 1, equalized=eq, gain=1.0) for k in range(len(plan))]
    G = Generator(ProgressiveSynthesis(g_blocks, to_rgb, growth, output), z_dim, shape)

    ch = channel_plan(d_width or width, len(plan))
    from_rgb = [nn.Sequential(conv(c, ch[k], 1, equalized=eq), nn.LeakyReLU(0.2))
                for k in range(len(plan))]
    d_blocks = []
    for k in range(len(plan) - 1, 0, -1):  # plan[k] -> plan[k - 1]
        main = nn.Sequential(conv(ch[k], ch[k], 3, equalized=eq), nn.LeakyReLU(0.2),
                             conv(ch[k], ch[k - 1], 3, equalized=eq), nn.AvgPool2d(2))
        d_blocks.append(Stage(main, nn.LeakyReLU(0.2), ch[k - 1], plan[k - 1],
                              is_input=(k == len(plan) - 1)))

    def head(c_in: int) -> nn.Module:
        return nn.Sequential(conv(c_in, ch[0], 3, equalized=eq), nn.LeakyReLU(0.2),
                             conv(ch[0], ch[0], b, equalized=eq, padding=0), nn.LeakyReLU(0.2),
                             nn.Flatten(), linear(ch[0], 1, equalized=eq, gain=1.0))

    D = ProgressiveDiscriminator(d_blocks, head, ch[0], from_rgb, growth)
    return G, D
