"""Feature matching (Salimans et al. 2016, "Improved Techniques for Training GANs", section 3.1):
G is trained to match the batch mean of D's intermediate features on real and generated data,
    || E f(x_real) - E f(G(z)) ||_2^2,
f = `critic.features(x)` (the last D block's output, flattened), computed on D's inputs after
every `d_input`. Real features are detached. `mode="replace"` (the paper) drops G's adversarial
loss (its weight becomes 0); `mode="add"` keeps it and adds the matching term. `weight`
multiplies the matching term in both modes. D's own loss is unchanged. Logged as `g_fm`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from tricks import Trick, TrickError, register_trick


@register_trick
class FeatureMatching(Trick):
    name = "feature_matching"
    summary = "G matches the mean of D's last-block features on real vs fake (replaces G's loss)"
    source = "Salimans et al. 2016"

    @dataclass(frozen=True)
    class Params:
        mode: Literal["replace", "add"] = "replace"
        weight: float = 1.0

        def validate(self) -> None:
            if self.weight <= 0:
                raise ValueError("weight must be > 0")

    def adversarial_weight(self, phase):
        return 0.0 if phase == "g" and self.p.mode == "replace" else 1.0

    def penalty(self, ctx):
        if ctx.phase != "g":
            return {}
        features = getattr(ctx.critic, "features", None)
        if features is None:
            raise TrickError("feature_matching needs a critic with a `features(x)` method")
        with torch.no_grad():
            real = features(ctx.real_in).flatten(1).mean(0)
        fake = features(ctx.fake_in).flatten(1).mean(0)
        return {"fm": self.p.weight * (real - fake).square().sum()}
