"""Mode coverage on 2-D mixtures (PacGAN/VEEGAN protocol) and the 2-D path of evaluate_samples."""
import json
import math

import pytest
import torch

from bench.data import load_dataset
from bench.metrics import EvalSpec, MetricError, evaluate_samples, mode_coverage_2d
from bench.metrics.modes2d import kl_to_uniform

CPU = torch.device("cpu")


def true_sample(ds, n, seed=0):
    g = torch.Generator().manual_seed(seed)
    modes = torch.randint(0, len(ds.centers), (n,), generator=g)
    return ds.centers[modes] + ds.sigma * torch.randn(n, 2, generator=g)


def test_ring8_true_sample_covers_all_modes():
    ds = load_dataset("ring8")
    r = mode_coverage_2d(true_sample(ds, 2500), ds)
    assert set(r) == {"modes", "high_quality", "reverse_kl", "modes_strict"}
    assert r["modes"] == 8 and isinstance(r["modes"], int) and r["modes_strict"] == 8
    # the expected fraction is P(|N(0, s^2 I_2)| <= 3s) = 1 - exp(-4.5) = 0.9889 (sd 0.002 at n=2500)
    assert abs(r["high_quality"] - (1 - math.exp(-4.5))) < 0.008
    assert 0 <= r["reverse_kl"] < 0.01


def test_ring8_test_split_covers_all_modes():
    ds = load_dataset("ring8")
    r = mode_coverage_2d(ds.test, ds)
    assert r["modes"] == 8 and r["high_quality"] > 0.98 and r["reverse_kl"] < 0.01


def test_grid25_true_sample_covers_all_modes():
    ds = load_dataset("grid25")
    r = mode_coverage_2d(true_sample(ds, 2500), ds)
    assert r["modes"] == 25 and r["high_quality"] >= 0.98 and r["reverse_kl"] < 0.03


def test_collapse_to_one_point():
    ds = load_dataset("ring8")
    r = mode_coverage_2d(ds.centers[3].expand(2500, 2), ds)
    assert r == {"modes": 1, "high_quality": 1.0, "reverse_kl": pytest.approx(math.log(8)),
                 "modes_strict": 1}


def test_two_modes_half_half_kl_is_log4():
    ds = load_dataset("ring8")
    x = torch.cat([ds.centers[0].expand(500, 2), ds.centers[5].expand(500, 2)])
    r = mode_coverage_2d(x, ds)
    assert r["modes"] == 2 and r["reverse_kl"] == pytest.approx(math.log(4))  # KL(q||p) = log(8/2)


def test_low_quality_samples_do_not_count():
    ds = load_dataset("ring8")
    far = torch.zeros(1000, 2)  # the ring's centre: 1 away from every mode, >> 3 sigma
    near = ds.centers[2] + torch.tensor([3.5 * ds.sigma, 0.0])  # just outside 3 sigma
    x = torch.cat([far, near.expand(10, 2), ds.centers[1].expand(10, 2)])
    r = mode_coverage_2d(x, ds)
    assert r["modes"] == 1
    assert r["high_quality"] == pytest.approx(10 / 1020)


def test_no_high_quality_sample_is_worst_case():
    ds = load_dataset("grid25")
    r = mode_coverage_2d(torch.full((100, 2), 10.0), ds)
    assert r == {"modes": 0, "high_quality": 0.0, "reverse_kl": pytest.approx(math.log(25)),
                 "modes_strict": 0}


def test_nan_samples_are_low_quality():
    ds = load_dataset("ring8")
    x = torch.cat([torch.full((10, 2), float("nan")), ds.centers[:2]])
    r = mode_coverage_2d(x, ds)
    assert r["modes"] == 2 and r["high_quality"] == pytest.approx(2 / 12)


def test_kl_to_uniform_convention():
    assert kl_to_uniform(torch.tensor([5, 5, 5, 5])) == pytest.approx(0.0)
    assert kl_to_uniform(torch.tensor([1, 0, 0, 0])) == pytest.approx(math.log(4))
    assert kl_to_uniform(torch.tensor([0, 0])) == pytest.approx(math.log(2))


def test_bad_input_shapes():
    ds = load_dataset("ring8")
    with pytest.raises(MetricError):
        mode_coverage_2d(torch.zeros(10, 3), ds)
    with pytest.raises(MetricError):
        mode_coverage_2d(torch.zeros(10, 2), load_dataset("digits"))


def test_evaluate_samples_2d_uses_2500_seeded_samples_and_skips_image_metrics():
    ds = load_dataset("ring8")
    calls = []

    def sample_fn(n, g):
        calls.append(n)
        modes = torch.randint(0, 8, (n,), generator=g)
        return ds.centers[modes] + ds.sigma * torch.randn(n, 2, generator=g)

    spec = EvalSpec(batch_size=1000)  # default metrics: image ones simply do not apply
    m1, p1 = evaluate_samples(sample_fn, ds, spec, CPU)
    assert calls == [1000, 1000, 500]
    assert set(m1) == {"modes", "high_quality", "reverse_kl", "modes_strict"} and m1["modes"] == 8
    m2, _ = evaluate_samples(sample_fn, ds, spec, CPU)
    assert m1 == m2  # same seed, same samples
    json.dumps(p1)
    assert p1["num_generated"] == 2500 and p1["seed"] == 0
    m3, _ = evaluate_samples(sample_fn, ds, EvalSpec(metrics=("fid", "kid")), CPU)
    assert m3 == {}


def test_evaluate_samples_rejects_wrong_shapes():
    ds = load_dataset("ring8")
    with pytest.raises(MetricError, match="shape"):
        evaluate_samples(lambda n, g: torch.zeros(n, 3), ds, EvalSpec(), CPU)
