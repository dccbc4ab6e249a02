"""Label flipping (ganhacks, Chintala et al. 2016, "How to Train a GAN?", tip 6: "occasionally
flip the labels when training the discriminator"): each D-phase sample's target is swapped with
the other side's target (real <-> fake) with probability `fraction` (default 0.05), drawn
independently per sample from the global torch RNG, so it is deterministic per seed.

Targets hooks chain in name order, so `label_flip` runs before `label_smoothing` and
`one_sided_label_smoothing`: it swaps the raw 1/0 targets and the smoothing then maps them
(a flipped real sample gets the smoothed fake target, e.g. 0.1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from tricks import Trick, TrickError, register_trick


def _flip_mask(t: torch.Tensor, fraction: float) -> torch.Tensor:
    """A per-sample Bernoulli(fraction) mask, broadcastable to `t`."""
    mask = torch.rand(t.shape[0], device=t.device) < fraction
    return mask.view(-1, *([1] * (t.dim() - 1)))


@register_trick
class LabelFlip(Trick):
    name = "label_flip"
    summary = "swap D's real/fake targets for a random 5% of each batch"
    source = "ganhacks (Chintala et al. 2016)"
    excludes = {
        "wgan_gp": "a Wasserstein critic has no targets to flip",
        "relativistic": "the relativistic loss has no targets to flip",
    }

    @dataclass(frozen=True)
    class Params:
        fraction: float = 0.05

        def validate(self) -> None:
            if not 0.0 <= self.fraction <= 1.0:
                raise ValueError("fraction must be in [0, 1]")

    def targets(self, real_t, fake_t, step):
        if real_t.shape != fake_t.shape:
            raise TrickError(f"label_flip needs equal real/fake target shapes, got "
                             f"{tuple(real_t.shape)} and {tuple(fake_t.shape)}")
        flip_real, flip_fake = _flip_mask(real_t, self.p.fraction), _flip_mask(fake_t, self.p.fraction)
        return torch.where(flip_real, fake_t, real_t), torch.where(flip_fake, real_t, fake_t)
