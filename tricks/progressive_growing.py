"""Progressive growing (ProGAN): G and D start at the lowest resolution and grow to the data's
resolution one doubling at a time, each new layer faded in linearly. Karras et al. 2018,
"Progressive Growing of GANs for Improved Quality, Stability, and Variation", sections 2-4 and
appendix A. Networks: `tricks/_lib/progressive_nets.py`.

Resolutions: 16 px 4 -> 8 -> 16, 32 px 4 -> 8 -> 16 -> 32, and 28 px 7 -> 14 -> 28 (28 is not a
power of two, so growth starts at 7x7 rather than 4x4, like the DCGAN baseline's 28 px plan).

Schedule (a pure function of the step, set in `on_step`): the step budget is split into equal
phases, one per resolution (the paper: 800k images of fade-in then 800k stable per resolution).
The first phase trains the base resolution; in every later phase the new resolution fades in
with alpha rising linearly from 0 to 1 over the first `fade_fraction` of the phase (paper: half),
then stays at 1.

To keep the loop unaware, G always returns full-resolution images (nearest-upsampled from its
current resolution) and D accepts them (average-pooled down to its current resolution). Real
images during a fade-in are blended like G's output, lerp(upsample(pool(x)), x, alpha) at the
current resolution (the paper's appendix A.1), through `d_input` on real batches.

Choices: pixel norm in G (paper) on by default, and with it the trick claims `g_normalization`
(pixel norm replaces batch norm, paper section 4.2; `pixel_norm=False` frees the slot).
Equalized learning rate on by default (paper): in a 2000-step digits check under the harness's
shared Adam(2e-4, 0.5, 0.999) it scored FID 4.9, against 8.7 with `equalized_lr=False`
(conventional He init, the alternative the paper compares against) and 5.6 for the DCGAN
baseline (one seed, the suite's classifier features). G's output is linear (paper; metrics clip
to [-1, 1]); `output="tanh"` matches the baseline. Minibatch stddev is not built in: combine
with `minibatch_stddev` for the paper's full D. Not applicable to 2-D data.

Capacity: at the cell's width ProGAN's nets are much larger than the DCGAN baseline's (3x3 conv
pairs per resolution, a dense head): digits 16 px (width 32) G 98,817 -> 419,363 (4.2x), D 34,305
-> 548,961 (16x); 32 px width 64: G 5.7x, D 13.4x. `capacity = "matched"` picks G's and D's
full-resolution widths separately (the nearest parameter count to the cell's baseline G and D,
which must land within +-10%): digits 16 px widths 13 / 8 (G 1.03x, D 1.01x), 32 px width 64
cells 25 / 17 (G 1.00x, D 0.95x). `tests/test_capacity.py` checks the band.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from bench.core.config import OPTIONAL
from bench.nets import build_nets
from tricks import REPLACE, Nets, Trick, register_trick
from tricks._lib.karras_layers import (downsample, matched_width, param_count, resolution_plan,
                                       upsample)
from tricks._lib.progressive_nets import GrowthState, progressive_nets


@register_trick
class ProgressiveGrowing(Trick):
    name = "progressive_growing"
    summary = ("G and D grow from 4x4 (7x7 at 28 px) to full resolution, each new resolution "
               "faded in linearly (ProGAN G/D with pixel norm); G ~4x, D ~16x the baseline's "
               "parameters unless capacity=matched")
    source = "Karras et al. 2018 (ProGAN)"
    slots = ("g_architecture", "d_architecture")
    applies_to = frozenset({"image"})
    build_order = REPLACE

    @dataclass(frozen=True)
    class Params:
        fade_fraction: float = 0.5  # share of each growth phase spent fading the new layer in
        pixel_norm: bool = True
        equalized_lr: bool = True
        output: Literal["linear", "tanh"] = "linear"
        # added after cells were stored: enters the cell id only when not "free"
        capacity: Literal["free", "matched"] = field(default="free", metadata=OPTIONAL)

        def validate(self) -> None:
            if not 0.0 <= self.fade_fraction <= 1.0:
                raise ValueError("fade_fraction must be in [0, 1]")

    def __init__(self, params=None):
        super().__init__(params)
        self._steps, self._levels = 1, 1
        self._growth: GrowthState | None = None

    def claimed_slots(self) -> tuple[str, ...]:
        return self.slots + (("g_normalization",) if self.p.pixel_norm else ())

    def _nets(self, ctx, width: int, d_width: int):
        return progressive_nets(ctx.net.z_dim, width, ctx.shape, d_width=d_width,
                                pixel_norm=self.p.pixel_norm, equalized=self.p.equalized_lr,
                                output=self.p.output)

    def widths(self, ctx) -> tuple[int, int]:
        """G's and D's full-resolution channels: the cell's width, or with capacity="matched"
        the widths whose parameter counts are nearest the cell's baseline G and D."""
        width = ctx.net.resolved_width(ctx.kind)
        if self.p.capacity == "free":
            return width, width
        with torch.random.fork_rng(devices=[]), torch.device("meta"):  # counts only
            base = build_nets(ctx.net, ctx.kind, ctx.shape)
            g = matched_width(lambda w: param_count(self._nets(ctx, w, 1)[0]),
                              param_count(base.G), 2 * width, f"{self.name} G")
            d = matched_width(lambda w: param_count(self._nets(ctx, 1, w)[1]),
                              param_count(base.D), 2 * width, f"{self.name} D")
        return g, d


    def build(self, nets, ctx):
        G, D = self._nets(ctx, *self.widths(ctx))
        self._steps, self._levels = ctx.steps, len(resolution_plan(ctx.shape[1]))
        self._growth = G.synthesis.growth
        self.on_step(0)
        return Nets(G.to(ctx.device), D.to(ctx.device))

    def schedule(self, step: int) -> tuple[int, float]:
        """(stage, alpha) at `step`: phase k covers steps [k*T//L, (k+1)*T//L) for T steps and L
        resolutions; alpha rises from 0 at the phase's first step to 1 after fade_fraction of it."""
        bounds = [k * self._steps // self._levels for k in range(self._levels + 1)]
        stage = max(k for k in range(self._levels) if bounds[k] <= step)
        if stage == 0:
            return 0, 1.0
        fade = self.p.fade_fraction * (bounds[stage + 1] - bounds[stage])
        return stage, 1.0 if fade <= 0 else min(1.0, (step - bounds[stage]) / fade)

    def on_step(self, step):
        if self._growth is not None:
            self._growth.set(*self.schedule(step))

    def d_input(self, x, is_real, step):
        stage, alpha = self.schedule(step)
        if not is_real or stage == 0 or alpha >= 1.0:
            return x
        factor = 2 ** (self._levels - 1 - stage)  # full resolution -> current resolution
        cur = downsample(x, factor)
        return upsample(torch.lerp(upsample(downsample(cur, 2), 2), cur, alpha), factor)
