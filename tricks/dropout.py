"""Dropout (p = 0.5) after the activation of every D stage (`Stage.dropout`), as in the original
GAN's discriminator (Goodfellow et al. 2014) and Salimans et al. 2016. Option `on_g`: dropout also
in every G stage, active in train *and* test mode (ganhacks #17, "use dropouts in G in both train
and test phase", after Isola et al. 2017, where dropout is G's noise source), so G's evaluation
samples are drawn with dropout too. D's dropout follows the module's mode as usual.

Element-wise dropout (`nn.Dropout`) for both MLP and conv stages.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from tricks import Trick, register_trick
from tricks._lib.layers import stages


class AlwaysDropout(nn.Module):
    """Dropout that stays on in eval mode (G's dropout noise, ganhacks #17)."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.dropout(x, self.p, training=True)

    def extra_repr(self) -> str:
        return f"p={self.p}, train_and_eval=True"


@register_trick
class Dropout(Trick):
    name = "dropout"
    summary = "dropout p=0.5 in every D stage (option: in G too, on in train and test)"
    source = "Goodfellow et al. 2014; ganhacks #17 (Chintala et al. 2016) for G"

    @dataclass(frozen=True)
    class Params:
        p: float = 0.5
        on_g: bool = False
        g_p: float = 0.5

        def validate(self) -> None:
            if not (0.0 <= self.p < 1.0 and 0.0 <= self.g_p < 1.0):
                raise ValueError("dropout probabilities must be in [0, 1)")

    def build(self, nets, ctx):
        for st in stages(nets.D, self.name):
            st.attach("dropout", nn.Dropout(self.p.p), self.name)
        if self.p.on_g:
            for st in stages(nets.G, self.name):
                st.attach("dropout", AlwaysDropout(self.p.g_p), self.name)
        return nets
