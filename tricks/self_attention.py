"""Self-attention (SAGAN): a non-local attention block after the middle-resolution stage of G and
of D (`Stage.post`), so every output position can draw on features at every other position.
Zhang et al. 2019, "Self-Attention Generative Adversarial Networks", section 3.

For features x [B, C, H, W] with N = H*W positions: query f = W_f x and key g = W_g x (1x1 convs,
C/8 channels), attention beta_{j,i} = softmax_i(f(x_j) . g(x_i)), value h = W_h x (1x1 conv,
**C/2 channels**, as in the authors' released code and BigGAN; the paper's text says C/8), output
o_j = W_v sum_i beta_{j,i} h(x_i) (1x1 conv back to C channels) and y = x + gamma * o with the
learned scalar gamma initialised to 0, so the block starts as the identity. Convs have no bias
(released code); their weights take the nets' DCGAN init N(0, 0.02). The released code's 2x2
max-pooling of keys and values (a memory saving) is left out: attention is over all positions.

Stage choice: the stage whose resolution is the median of the net's stage resolutions (the upper
one for an even count): 8x8 in both nets for 16 and 32 px, 14x14 for 28 px. `resolution` picks
another one (it must exist in every net the block goes into). Images only: MLP stages have no
positions to attend over. Spectral norm (SAGAN uses it in G and D) is a separate trick; it also
covers these convs (it runs after inserted layers).

Capacity: the block adds 1.3% to G and 3.7% to D on digits 16 px (width 32; G 98,817 -> 100,098,
D 34,305 -> 35,586) and 2.2% / 3.1% on a 32 px cell (width 64): inside the suite's +-10% band,
so no matched option (`tests/test_capacity.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from bench.nets.parts import init_weights
from bench.trickapi.trick import TrickError
from tricks import Trick, register_trick
from tricks._lib.layers import stages


class SelfAttention2d(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        ck, cv = max(1, channels // 8), max(1, channels // 2)
        self.query = nn.Conv2d(channels, ck, 1, bias=False)   # f
        self.key = nn.Conv2d(channels, ck, 1, bias=False)     # g
        self.value = nn.Conv2d(channels, cv, 1, bias=False)   # h
        self.out = nn.Conv2d(cv, channels, 1, bias=False)     # v
        self.gamma = nn.Parameter(torch.zeros(()))
        init_weights(self)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """beta: [B, N, N], row j = the weights output position j puts on every position i."""
        q, k = self.query(x).flatten(2), self.key(x).flatten(2)  # [B, C/8, N]
        return F.softmax(q.transpose(1, 2) @ k, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        beta = self.attention(x)
        v = self.value(x).flatten(2)                          # [B, C/2, N]
        o = (v @ beta.transpose(1, 2)).view(b, -1, h, w)      # o_j = sum_i beta_{j,i} v_i
        return x + self.gamma * self.out(o)


def middle_stage(net: nn.Module, trick: str, resolution: int | None):
    sts = [s for s in stages(net, trick) if s.resolution is not None]
    if not sts:
        raise TrickError(f"{trick} needs conv stages (with a resolution)")
    if resolution is None:
        res = sorted({s.resolution for s in sts})
        resolution = res[len(res) // 2]
    for s in sts:
        if s.resolution == resolution:
            return s
    raise TrickError(f"{trick}: no stage at resolution {resolution} "
                     f"(stages: {sorted({s.resolution for s in sts})})")


@register_trick
class SelfAttention(Trick):
    name = "self_attention"
    summary = "SAGAN self-attention (gamma starts at 0) after the middle-resolution stage of G and D"
    source = "Zhang et al. 2019"
    applies_to = frozenset({"image"})

    @dataclass(frozen=True)
    class Params:
        on_g: bool = True
        on_d: bool = True
        resolution: Optional[int] = None

        def validate(self) -> None:
            if not (self.on_g or self.on_d):
                raise ValueError("at least one of on_g, on_d must be true")
            if self.resolution is not None and self.resolution < 1:
                raise ValueError("resolution must be >= 1")

    def build(self, nets, ctx):
        for on, net in ((self.p.on_g, nets.G), (self.p.on_d, nets.D)):
            if on:
                st = middle_stage(net, self.name, self.p.resolution)
                st.attach("post", SelfAttention2d(st.channels), self.name)
        return nets
