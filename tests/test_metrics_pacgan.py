"""The suite's 2-D mode metrics (bench/metrics/modes2d.py) are PacGAN's, rule by rule.

The reference is PacGAN's evaluation code, github.com/fjxmlzn/PacGAN (commit 190853e),
`synthetic_data_experiments/PacGAN/pacgan/extensions.py`, class `MetricLogger`:
- line 115: `dis_thre=3`;
- lines 155-168: each sample's distance to every mode is sqrt(sum((x - mean)^2 / variance)) with
  the variance the diagonal of the mode's covariance (sigma^2 I in both configs), i.e. the
  Euclidean distance in units of sigma; the sample goes to the nearest mode, and is counted in
  that mode's bin of `detail_of_coverage` only if `min_dis < self.dis_thre` (strictly);
- line 171: `mode_coverage` = the number of non-empty bins (>= 1 high-quality sample);
- line 172: `good_points_percentage` = sum of the bins / number of samples;
- line 174: `entropy_of_coverage` = scipy.stats.entropy of the normalised bins (natural log);
  no reverse KL is logged: KL(q || uniform) = log K - H(q) of the same bins.
- the sample count: `num_log_figure_sample` = 2500 in `2DRing_GAN&PacGAN/config.py` and
  `2DGrid_GAN&PacGAN/config.py`; the modes and sigma: `MEANS` / `VARIANCES` in those configs.

`pacgan_metric` below restates those lines in numpy (a paraphrase, not the authors' code), and
the tests check the suite's function gives the same numbers on samples from every reference
sampler (chance and true data) and on hand-made edge cases.
"""
import math

import numpy as np
import pytest
import torch

from bench.data import load_dataset
from bench.metrics.evaluate import NUM_SAMPLES_2D, evaluate_samples
from bench.metrics.modes2d import HQ_SIGMAS, mode_coverage_2d
from bench.metrics.protocol import EvalSpec
from bench.metrics.references import references_for

DATASETS = ("ring8", "grid25", "ring8-pacgan", "grid25-pacgan")


def pacgan_metric(x: np.ndarray, means: np.ndarray, sigma: float, thre: float = 3.0) -> dict:
    bins = np.zeros(len(means))
    for point in x:
        dis = np.sqrt((((point[None, :] - means) ** 2) / sigma ** 2).sum(axis=1))
        j = int(np.argmin(dis))
        if dis[j] < thre:
            bins[j] += 1
    out = {"modes": int((bins > 0).sum()), "high_quality": bins.sum() / len(x)}
    if bins.sum() > 0:
        q = bins / bins.sum()
        entropy = -float(sum(p * math.log(p) for p in q if p > 0))
        out["reverse_kl"] = math.log(len(means)) - entropy
    return out


def test_the_protocol_constants_are_pacgans():
    assert HQ_SIGMAS == 3.0 and NUM_SAMPLES_2D == 2500


@pytest.mark.parametrize("name", DATASETS)
def test_every_reference_sampler_scores_as_pacgans_code(name):
    data = load_dataset(name)
    means, sigma = data.centers.double().numpy(), float(data.sigma)
    for ref in references_for(data):
        x = ref.sampler(NUM_SAMPLES_2D, torch.Generator().manual_seed(0))
        ours = mode_coverage_2d(x, data)
        theirs = pacgan_metric(x.double().numpy(), means, sigma)
        assert ours["modes"] == theirs["modes"], (name, ref.name)
        assert ours["high_quality"] == pytest.approx(theirs["high_quality"], abs=1e-12)
        # no high-quality sample (the collapsed sampler on a ring): PacGAN logs no entropy;
        # the suite reports the worst value, log K (modes2d.py's docstring)
        want = theirs.get("reverse_kl", math.log(len(means)))
        assert ours["reverse_kl"] == pytest.approx(want, abs=1e-9)


def test_the_3_sigma_rule_is_strict():
    data = load_dataset("grid25-pacgan")
    c = data.centers[12].double()  # the centre (0, 0): a sample 3 sigma away on one axis
    sigma = float(data.sigma)
    at = torch.stack([c + torch.tensor([3 * sigma, 0.0], dtype=torch.float64)])
    inside = torch.stack([c + torch.tensor([3 * sigma * (1 - 1e-9), 0.0], dtype=torch.float64)])
    d_at = float(torch.cdist(at, c[None]).item())
    assert mode_coverage_2d(inside, data)["high_quality"] == 1.0
    expected = 1.0 if d_at < 3 * sigma else 0.0  # PacGAN: counted only if min_dis < 3
    assert mode_coverage_2d(at, data)["high_quality"] == expected


def test_a_mode_is_captured_by_one_high_quality_sample():
    data = load_dataset("ring8-pacgan")
    x = torch.cat([data.centers[:3], torch.zeros(97, 2)])  # 3 exact centres, 97 far away
    r = mode_coverage_2d(x, data)
    assert r["modes"] == 3 and r["high_quality"] == pytest.approx(0.03)
    assert r["reverse_kl"] == pytest.approx(math.log(8) - math.log(3))
    assert r["modes_strict"] == 0  # the stricter companion needs 1/4 of the fair share


def test_chance_samplers_under_the_papers_definition():
    """What a structureless sampler scores under PacGAN's own rules (documented in
    docs/pacgan.md): near-full coverage and a low reverse KL, but a tiny high-quality share,
    and no mode passes modes_strict."""
    spec = EvalSpec(metrics=("modes",))
    seen = {}
    for name in ("ring8-pacgan", "grid25-pacgan"):
        data = load_dataset(name)
        for ref in references_for(data):
            if ref.role != "chance":
                continue
            m, _ = evaluate_samples(ref.sampler, data, spec, "cpu")
            seen[(name, ref.name)] = m
    ring = seen[("ring8-pacgan", "uniform_ring_3s")]
    assert ring["modes"] == 8 and ring["high_quality"] < 0.06 and ring["modes_strict"] == 0
    box = seen[("grid25-pacgan", "uniform_box")]
    assert box["modes"] >= 15 and box["high_quality"] < 0.03 and box["modes_strict"] == 0
