"""`modes_strict`: a companion to the PacGAN/VEEGAN mode count that a structureless sampler
cannot pass.

Under the papers' rule a mode is covered by ONE high-quality sample, so a sampler with no
structure scores near-full coverage (a uniform ring with radial sd 0.03 covers 8 of ring8's 8
modes; uniform noise over grid25's square covers about 20 of 25). `modes_strict` counts a mode
only when at least STRICT_SHARE of its fair share of all N scored samples (N / K) are
high-quality samples nearest to it: with STRICT_SHARE = 1/4, at least N / (4K) samples (2,500
samples: 78.125 for ring8, so 79 samples, and 25 for grid25). The true mixture puts ~0.99 N / K there, a structureless
sampler ~0.005 N / K (ring8, radial sd 0.03) or ~0.001 N / K (grid25, uniform square).
"""
from __future__ import annotations

import torch

STRICT_SHARE = 0.25


def strict_threshold(num_samples: int, num_modes: int) -> float:
    """High-quality samples a mode needs to count in `modes_strict`."""
    return STRICT_SHARE * num_samples / num_modes


def strict_mode_count(counts: torch.Tensor, num_samples: int) -> int:
    """Modes whose high-quality count (`counts`, one bin per mode) reaches strict_threshold."""
    return int((counts.double() >= strict_threshold(num_samples, counts.numel())).sum())
