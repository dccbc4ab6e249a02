"""Mode counting for image sets from classifier labels (VEEGAN/PacGAN Stacked-MNIST protocol).

Every generated sample is assigned the mode its (per-channel) classifier predictions name; no
confidence threshold. ``*_modes`` counts distinct modes hit; ``*_kl`` = KL(q || uniform) with q the
normalised histogram of the samples over all modes, summing over q > 0 (0 log 0 = 0).
"""
from __future__ import annotations

import torch

from .errors import MetricError
from .modes2d import kl_to_uniform


def stacked_mode_coverage(channel_labels: torch.Tensor, num_classes: int = 10) -> dict:
    """Per-channel predicted classes ``[N, 3]`` -> {"stacked_modes": int, "stacked_kl": float}.

    The mode of a sample is ``num_classes**2 * a + num_classes * b + c`` (100a + 10b + c for digits),
    out of ``num_classes**3`` (1000) modes.
    """
    y = torch.as_tensor(channel_labels).detach().cpu().long()
    if y.dim() != 2 or y.shape[1] != 3 or len(y) == 0:
        raise MetricError(f"stacked_mode_coverage expects labels of shape [N, 3], got {tuple(y.shape)}")
    k = num_classes
    ids = (k * k) * y[:, 0] + k * y[:, 1] + y[:, 2]
    counts = torch.bincount(ids, minlength=k ** 3)
    return {"stacked_modes": int((counts > 0).sum()), "stacked_kl": kl_to_uniform(counts)}


def class_mode_coverage(labels: torch.Tensor, num_classes: int) -> dict:
    """Predicted classes ``[N]`` -> {"modes": classes hit, "class_kl": KL(q || uniform over classes)}."""
    y = torch.as_tensor(labels).detach().cpu().long().reshape(-1)
    if len(y) == 0:
        raise MetricError("class_mode_coverage needs at least one label")
    counts = torch.bincount(y, minlength=num_classes)
    return {"modes": int((counts > 0).sum()), "class_kl": kl_to_uniform(counts)}
