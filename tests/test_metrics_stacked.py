"""Mode counting on stacked digits (1000 modes) and 10-class sets."""
import math

import pytest
import torch

from bench.data import load_dataset, mode_ids
from bench.metrics import EvalSpec, MetricError, class_mode_coverage, evaluate_samples, stacked_mode_coverage

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def stacked():
    return load_dataset("stacked-digits")


def test_stacked_mode_coverage_counts_triples():
    y = torch.tensor([[1, 2, 3], [1, 2, 3], [9, 9, 9], [0, 0, 0]])
    r = stacked_mode_coverage(y)
    assert r["stacked_modes"] == 3
    q = torch.tensor([0.5, 0.25, 0.25])
    assert r["stacked_kl"] == pytest.approx(float((q * torch.log(q * 1000)).sum()))


def test_stacked_mode_ids_agree_with_bench_data():
    y = torch.randint(0, 10, (500, 3), generator=torch.Generator().manual_seed(0))
    assert stacked_mode_coverage(y)["stacked_modes"] == len(torch.unique(mode_ids(y)))


def test_all_modes_uniform_gives_zero_kl():
    a, b, c = torch.meshgrid(torch.arange(10), torch.arange(10), torch.arange(10), indexing="ij")
    y = torch.stack([a.flatten(), b.flatten(), c.flatten()], 1).repeat(3, 1)
    assert stacked_mode_coverage(y) == {"stacked_modes": 1000, "stacked_kl": pytest.approx(0.0, abs=1e-12)}


def test_class_mode_coverage():
    assert class_mode_coverage(torch.arange(10).repeat(5), 10) == {"modes": 10, "class_kl": pytest.approx(0.0)}
    assert class_mode_coverage(torch.zeros(7, dtype=torch.long), 10) == {
        "modes": 1, "class_kl": pytest.approx(math.log(10))}
    with pytest.raises(MetricError):
        stacked_mode_coverage(torch.zeros(4, 2, dtype=torch.long))


def test_real_stacked_images_cover_all_modes(stacked, cache_dir):
    def real(n, g):
        return stacked.train[torch.randint(0, len(stacked.train), (n,), generator=g)]

    m, p = evaluate_samples(real, stacked, EvalSpec(metrics=("modes",), cache_dir=cache_dir), CPU)
    assert set(m) == {"stacked_modes", "stacked_kl"}
    # 26,000 uniform draws over 1000 modes miss none in expectation (1000 * e^-26); the classifier
    # errs on ~1% of channels, which moves samples between modes but keeps q close to uniform
    assert m["stacked_modes"] >= 995
    assert m["stacked_kl"] < 0.05  # sampling noise alone gives ~ (K-1) / 2N = 0.019
    assert p["mode_samples"] == 26000 and p["num_modes"] == 1000 and p["classifier"]["per_channel"]


def test_repeating_one_image_covers_one_mode(stacked, cache_dir):
    spec = EvalSpec(metrics=("modes",), stacked_samples=3000, cache_dir=cache_dir)
    m, p = evaluate_samples(lambda n, g: stacked.test[:1].expand(n, -1, -1, -1), stacked, spec, CPU)
    assert m == {"stacked_modes": 1, "stacked_kl": pytest.approx(math.log(1000))}
    assert p["mode_samples"] == 3000


def test_stacked_image_metrics_use_joint_logits(stacked, cache_dir):
    def real(n, g):
        return stacked.test[torch.randint(0, len(stacked.test), (n,), generator=g)]

    spec = EvalSpec(metrics=("fid", "is", "dc"), num_samples=500, cache_dir=cache_dir)
    m, p = evaluate_samples(real, stacked, spec, CPU)
    assert set(m) == {"fid", "is_mean", "is_std", "density", "coverage"}
    assert p["feature_dim"] == 384 and p["extractor_name"].startswith("ganbench-clf3-")
    assert m["is_mean"] > 30  # 1000 joint classes, but 50 samples per split cap each split's score at ~50
    assert m["coverage"] > 0.8
