"""Batch normalization as in DCGAN: a BatchNorm layer in every stage of G (`Stage.norm`, between
the stage's conv/linear and its activation; never in the output layer `to_out`) and in every stage
of D except the input stage (`blocks[0].is_input`). BatchNorm2d for conv stages, BatchNorm1d for
MLP stages. Radford et al. 2016, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", section 3.

The loop already sends real and fake samples through D as separate batches, so D's batch
statistics never mix the two (as in the DCGAN reference code). Gains start at N(1, 0.02) and
shifts at 0, as in the DCGAN reference code (Newmu/dcgan_code); eps 1e-5, momentum 0.1.

G in eval mode (the trainer samples for evaluation with `G.eval()`): by default (`g_eval_stats=
"batch"`) G's layers keep no running statistics and always normalise with the statistics of the
batch being generated, as the DCGAN reference code does when sampling; `"running"` uses PyTorch's
running averages in eval mode instead. D keeps running averages (it is only run in train mode).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from tricks import Trick, register_trick
from tricks._lib.layers import feature_norm, stages


def _bn(channels: int, conv: bool, track: bool, momentum: float) -> nn.Module:
    cls = nn.BatchNorm2d if conv else nn.BatchNorm1d
    layer = cls(channels, momentum=momentum, track_running_stats=track)
    nn.init.normal_(layer.weight, 1.0, 0.02)
    nn.init.zeros_(layer.bias)
    return layer


@register_trick
class BatchNorm(Trick):
    name = "batch_norm"
    summary = "batch norm in every G stage and every D stage but the input one (DCGAN)"
    source = "Radford et al. 2016"
    slots = ("g_normalization",)  # virtual_batch_norm claims it too (and says why it excludes BN)

    def claimed_slots(self) -> tuple[str, ...]:
        return self.slots if self.p.on_g else ()  # D-only batch norm leaves G's norms alone

    @dataclass(frozen=True)
    class Params:
        on_g: bool = True
        on_d: bool = True
        g_eval_stats: Literal["batch", "running"] = "batch"
        momentum: float = 0.1

        def validate(self) -> None:
            if not (self.on_g or self.on_d):
                raise ValueError("at least one of on_g, on_d must be true")
            if not 0.0 < self.momentum <= 1.0:
                raise ValueError("momentum must be in (0, 1]")

    def build(self, nets, ctx):
        if self.p.on_g:
            track = self.p.g_eval_stats == "running"
            for st in stages(nets.G, self.name):
                layer = feature_norm(st, lambda c: _bn(c, True, track, self.p.momentum),
                                     lambda c: _bn(c, False, track, self.p.momentum))
                st.attach("norm", layer, self.name)
        if self.p.on_d:
            for st in stages(nets.D, self.name):
                if st.is_input:
                    continue
                layer = feature_norm(st, lambda c: _bn(c, True, True, self.p.momentum),
                                     lambda c: _bn(c, False, True, self.p.momentum))
                st.attach("norm", layer, self.name)
        return nets
