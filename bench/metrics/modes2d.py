"""Mode coverage on 2-D Gaussian mixtures, following the PacGAN/VEEGAN protocol.

PacGAN's evaluation code is the reference (github.com/fjxmlzn/PacGAN,
`synthetic_data_experiments/PacGAN/pacgan/extensions.py`, class `MetricLogger`, lines 115-175;
tests/test_metrics_pacgan.py checks each rule against a transcription of it). VEEGAN's public
repository (akashgit/VEEGAN) holds no evaluation code, so PacGAN's is the one followed.

* A sample is *high quality* if its Euclidean distance to the nearest mode centre is less than
  3 sigma (`min_dis < self.dis_thre` with `dis_thre=3` and the distance in units of sigma).
* A mode is *covered* if at least one high-quality sample has it as its nearest centre.
* ``reverse_kl`` = KL(q || p) = sum_k q_k log(q_k / p_k), with q the normalised histogram over modes
  of the high-quality samples (each assigned to its nearest centre) and p uniform over the modes.
  Empty bins contribute 0 (0 log 0 = 0, i.e. the sum runs over q_k > 0), so the value lies in
  [0, log K]. With no high-quality sample at all q is undefined; we then report the worst value,
  log K (the KL of full collapse onto one mode). PacGAN's code does not log a reverse KL; it
  logs `entropy_of_coverage` = H(q) of this same histogram (`detail_of_coverage` counts only
  high-quality samples), and KL(q || uniform) = log K - H(q).
* 2,500 samples (`num_log_figure_sample` in PacGAN's configs; bench/metrics/evaluate.py).
"""
from __future__ import annotations

import math

import torch

from .errors import MetricError
from .modes_strict import strict_mode_count

HQ_SIGMAS = 3.0


def kl_to_uniform(counts: torch.Tensor) -> float:
    """KL(q || uniform) for a histogram ``counts`` over K bins, summing over q > 0; log K if empty."""
    counts = counts.double()
    k = counts.numel()
    total = float(counts.sum())
    if total <= 0:
        return math.log(k)
    q = counts[counts > 0] / total
    return max(0.0, float((q * torch.log(q * k)).sum()))


def mode_coverage_2d(samples: torch.Tensor, dataset) -> dict:
    """Returns {"modes": int, "high_quality": float fraction, "reverse_kl": float}."""
    if dataset.centers is None or dataset.sigma is None:
        raise MetricError(f"mode_coverage_2d needs a 2-D mixture dataset with centres, got {dataset.name}")
    x = torch.as_tensor(samples).detach().to("cpu", torch.float64)
    if x.dim() != 2 or x.shape[1] != 2 or len(x) == 0:
        raise MetricError(f"mode_coverage_2d expects samples of shape [N, 2], got {tuple(x.shape)}")
    x = torch.nan_to_num(x, nan=1e9, posinf=1e9, neginf=-1e9)
    centers = dataset.centers.detach().to("cpu", torch.float64)
    dist = torch.cdist(x, centers)  # [N, K]
    dmin, nearest = dist.min(dim=1)
    hq = dmin < HQ_SIGMAS * float(dataset.sigma)  # strict, as PacGAN's `min_dis < dis_thre`
    counts = torch.bincount(nearest[hq], minlength=len(centers))
    return {
        "modes": int((counts > 0).sum()),
        "high_quality": float(hq.double().mean()),
        "reverse_kl": kl_to_uniform(counts),
        "modes_strict": strict_mode_count(counts, len(x)),  # bench/metrics/modes_strict.py
    }
