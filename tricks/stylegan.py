"""StyleGAN generator: a mapping MLP z -> w and a synthesis network that starts from a learned
constant and is driven by per-layer styles (modulated convolutions with weight demodulation, or
StyleGAN1's AdaIN), per-layer noise, and style mixing during training. Karras et al. 2019 ("A
Style-Based Generator Architecture for GANs") and 2020 (StyleGAN2, "Analyzing and Improving the
Image Quality of StyleGAN"). Networks and their exact layout: `tricks/_lib/style_nets.py`. D is left
as it is (the baseline's, or whatever `d_architecture` trick the cell has).

* `G.mapping` is the mapping network ([B, z_dim] -> [B, w_dim], w_dim = z_dim); `G.synthesis`
  takes w [B, w_dim] or per-layer ws [B, num_ws, w_dim]; G(z) == G.synthesis(G.mapping(z))
  whenever no mixing happens (always in eval mode), which `path_length` relies on.
* Base resolution 4x4 (7x7 at 28 px), doubling to the data's resolution; channels as the DCGAN
  baseline (`width` at full resolution, doubling per halving).
* Mapping: 8 layers (paper; `mapping_layers`, cheap at these widths) with learning-rate
  multiplier 0.01 (paper; `mapping_lr_mul`). Style mixing probability 0.9 (paper), one crossover
  layer per batch, train mode only.
* Noise: per-layer Gaussian noise with learned per-channel strengths starting at 0; fresh noise
  per sample in train mode, a fixed per-layer noise map in eval mode (the official code's
  noise_mode='const'), so evaluation samples are a deterministic function of z.
* Equalized learning rate on by default (paper). Without it (He-init weights used as stored) G
  moves ~15x more per step under the harness's Adam(2e-4) and D stays at chance: in a 2000-step
  digits check FID 76 (4 of 10 classes) against 15.5 with it. Output linear (paper);
  `output="tanh"` matches the baseline.
* Excludes G normalizations: styles act per sample through (de)modulation/AdaIN; batch statistics
  would couple the samples of a batch. Not applicable to 2-D data.
* Capacity: at the cell's width G is larger than the DCGAN baseline's (digits 16 px, width 32:
  98,817 -> 363,491, 3.7x; 32 px width 64: 5.3x); D is unchanged. `capacity = "matched"` picks
  G's full-resolution width whose parameter count (mapping network included) is nearest the
  baseline G's, within +-10%: width 13 on digits 16 px (1.00x), 27 on 32 px width 64 (1.03x).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from bench.core.config import OPTIONAL
from bench.nets import build_nets
from tricks import REPLACE, Nets, Trick, register_trick
from tricks._lib.karras_layers import matched_width, param_count
from tricks._lib.style_nets import style_generator

_NORM_REASON = ("StyleGAN's G normalises per sample through (de)modulation/AdaIN; batch "
                "statistics would couple the styles of a batch")


@register_trick
class StyleGAN(Trick):
    name = "stylegan"
    summary = ("style-based G: 8-layer mapping z->w, learned constant input, demodulated "
               "modulated convs, per-layer noise, style mixing 0.9; G ~3.7x the baseline's "
               "parameters unless capacity=matched")
    source = "Karras et al. 2019; Karras et al. 2020 (StyleGAN2)"
    slots = ("g_architecture",)
    excludes = {"batch_norm": _NORM_REASON, "virtual_batch_norm": _NORM_REASON}
    applies_to = frozenset({"image"})
    build_order = REPLACE

    @dataclass(frozen=True)
    class Params:
        modulation: Literal["modconv", "adain"] = "modconv"
        mapping_layers: int = 8
        mapping_lr_mul: float = 0.01
        mixing_prob: float = 0.9
        equalized_lr: bool = True
        output: Literal["linear", "tanh"] = "linear"
        # added after cells were stored: enters the cell id only when not "free"
        capacity: Literal["free", "matched"] = field(default="free", metadata=OPTIONAL)

        def validate(self) -> None:
            if self.mapping_layers < 0:
                raise ValueError("mapping_layers must be >= 0")
            if self.mapping_lr_mul <= 0:
                raise ValueError("mapping_lr_mul must be > 0")
            if not 0.0 <= self.mixing_prob <= 1.0:
                raise ValueError("mixing_prob must be in [0, 1]")

    def _generator(self, ctx, width: int):
        return style_generator(ctx.net.z_dim, width, ctx.shape,
                               mapping_layers=self.p.mapping_layers,
                               mapping_lr_mul=self.p.mapping_lr_mul, mode=self.p.modulation,
                               mixing_prob=self.p.mixing_prob, equalized=self.p.equalized_lr,
                               output=self.p.output)

    def width(self, ctx) -> int:
        """G's full-resolution channels: the cell's width, or with capacity="matched" the width
        whose parameter count (mapping included) is nearest the cell's baseline G."""
        width = ctx.net.resolved_width(ctx.kind)
        if self.p.capacity == "free":
            return width
        with torch.random.fork_rng(devices=[]), torch.device("meta"):  # counts only
            target = param_count(build_nets(ctx.net, ctx.kind, ctx.shape).G)
            return matched_width(lambda w: param_count(self._generator(ctx, w)), target,
                                 2 * width, f"{self.name} G")


    def build(self, nets, ctx):
        G = self._generator(ctx, self.width(ctx))
        return Nets(G.to(ctx.device), nets.D)
