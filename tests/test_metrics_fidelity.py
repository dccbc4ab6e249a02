"""FID / IS / KID / PR / density-coverage on digits with the classifier extractor."""
import json
import pathlib

import numpy as np
import pytest
import scipy.linalg
import torch

from bench.data import load_dataset
from bench.metrics import EvalSpec, MetricError, evaluate_samples, get_classifier
from bench.metrics.extractors import create_classifier_extractor, extract_features
from bench.metrics.fidelity import fidelity_kwargs, reference_images
from bench.metrics.images import to_uint8

CPU = torch.device("cpu")
IMAGE_KEYS = {"fid", "is_mean", "is_std", "kid_mean", "kid_std", "precision", "recall", "density", "coverage",
              "modes", "class_kl"}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def sequential_sampler(images):
    """Hands out ``images`` in order, without replacement (ignores the generator)."""
    pos = [0]

    def sample_fn(n, g):
        out = images[pos[0]:pos[0] + n]
        pos[0] += n
        return out

    return sample_fn


def train_half_sampler(ds):
    perm = torch.randperm(len(ds.train), generator=torch.Generator().manual_seed(1))
    return sequential_sampler(ds.train[perm])


def noise_sampler(ds):
    return lambda n, g: torch.rand(n, *ds.shape, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def real_vs_real(digits, cache_dir):
    # generated = 1000 distinct train images, reference = the 359 test images: disjoint real sets
    spec = EvalSpec(num_samples=1000, cache_dir=cache_dir)
    return evaluate_samples(train_half_sampler(digits), digits, spec, CPU)


@pytest.fixture(scope="module")
def noise_vs_real(digits, cache_dir):
    return evaluate_samples(noise_sampler(digits), digits, EvalSpec(num_samples=1000, cache_dir=cache_dir), CPU)


def test_disjoint_real_sets_score_well(real_vs_real):
    m, p = real_vs_real
    assert set(m) == IMAGE_KEYS
    assert m["fid"] < 10
    assert abs(m["kid_mean"]) < 3 * m["kid_std"] + 1.0
    assert m["precision"] > 0.85 and m["recall"] > 0.9
    assert m["density"] > 0.8 and m["coverage"] > 0.9
    assert m["is_mean"] > 8  # 10 balanced, confidently classified classes -> close to 10
    assert m["modes"] == 10 and m["class_kl"] < 0.01
    assert p["num_generated"] == 1000 and p["num_reference"] == 359 and p["reference_split"] == "test"


def test_noise_scores_far_worse(real_vs_real, noise_vs_real):
    real, noise = real_vs_real[0], noise_vs_real[0]
    assert noise["fid"] > 20 * real["fid"] and noise["fid"] > 20
    assert noise["kid_mean"] > 20 * abs(real["kid_mean"]) and noise["kid_mean"] > 0.5
    assert noise["precision"] < 0.1 and noise["recall"] < 0.1
    assert noise["density"] < 0.1 and noise["coverage"] < 0.1
    assert noise["is_mean"] < real["is_mean"] / 2


def test_set_against_itself(digits, cache_dir):
    # generated = exactly the reference images: identical features on both sides
    spec = EvalSpec(metrics=("fid", "kid", "prc", "dc"), num_samples=len(digits.test), cache_dir=cache_dir)
    m, _ = evaluate_samples(sequential_sampler(digits.test), digits, spec, CPU)
    assert abs(m["fid"]) < 1e-6
    # (KID's unbiased estimate of two identical sets is slightly negative by construction)
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["coverage"] == 1.0


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _features(digits, cache_dir, images):
    ext = create_classifier_extractor(get_classifier(digits, cache_dir), cuda=False)
    return extract_features(ext, images, 256, CPU)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_fid_equals_direct_frechet_distance(digits, cache_dir, real_vs_real, noise_vs_real):
    perm = torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(1))
    ref = _features(digits, cache_dir, reference_images(digits, len(digits.test)))["penultimate"].numpy()
    real = _features(digits, cache_dir, to_uint8(digits.train[perm][:1000]))["penultimate"].numpy()
    g = torch.Generator().manual_seed(0)
    noise = torch.cat([torch.rand(n, 1, 16, 16, generator=g) * 2 - 1 for n in (256, 256, 256, 232)])
    noise = _features(digits, cache_dir, to_uint8(noise))["penultimate"].numpy()
    assert real_vs_real[0]["fid"] == pytest.approx(frechet_distance(real, ref), rel=1e-3)
    assert noise_vs_real[0]["fid"] == pytest.approx(frechet_distance(noise, ref), rel=1e-3)


class _Uint8Set(torch.utils.data.Dataset):
    def __init__(self, x):
        self.x = x

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i]


def test_matches_torch_fidelity_calculate_metrics(digits, cache_dir, real_vs_real):
    import torch_fidelity

    from bench.metrics.extractors import register_classifier_extractor

    clf = get_classifier(digits, cache_dir)
    perm = torch.randperm(len(digits.train), generator=torch.Generator().manual_seed(1))
    gen = to_uint8(digits.train[perm][:1000])
    ref = reference_images(digits, len(digits.test))
    kw = fidelity_kwargs(len(gen), len(ref))
    tf = torch_fidelity.calculate_metrics(
        input1=_Uint8Set(gen), input2=_Uint8Set(ref), cuda=False, batch_size=256, isc=True, fid=True, kid=True,
        prc=True, feature_extractor=register_classifier_extractor(clf), cache=False,
        **{**kw, "save_cpu_ram": True})  # save_cpu_ram: no DataLoader worker processes
    ours = real_vs_real[0]
    assert ours["fid"] == pytest.approx(tf["frechet_inception_distance"], rel=1e-4)
    assert ours["is_mean"] == pytest.approx(tf["inception_score_mean"], rel=1e-4)
    assert ours["is_std"] == pytest.approx(tf["inception_score_std"], rel=1e-3, abs=1e-4)
    assert ours["kid_mean"] == pytest.approx(tf["kernel_inception_distance_mean"], rel=1e-3, abs=1e-3)
    assert ours["precision"] == pytest.approx(tf["precision"], abs=5e-3)
    assert ours["recall"] == pytest.approx(tf["recall"], abs=5e-3)


def test_protocol_is_json_and_complete(real_vs_real, digits, cache_dir):
    _, p = real_vs_real
    assert json.loads(json.dumps(p)) == p
    clf = get_classifier(digits, cache_dir)
    assert p["extractor"] == "classifier" and p["weights_sha256"] == clf.weights_sha256
    assert p["feature_layer"] == "penultimate" and p["feature_dim"] == 128
    assert p["extractor_name"].endswith(clf.weights_sha256[:16])
    assert p["classifier"]["test_accuracy"] == clf.test_accuracy and len(p["classifier"]["recipe_hash"]) == 64
    assert p["seed"] == 0 and p["torch_fidelity_version"] == "0.4.0"
    assert p["kid_subset_size"] == 359 and p["dc_nearest_k"] == 5 and p["prc_neighborhood"] == 3


def test_reference_features_are_cached_on_disk(digits, cache_dir, real_vs_real):
    files = sorted((pathlib.Path(cache_dir) / "reference").glob("ref-digits-test-ganbench-clf-*-n359-*.npz"))
    assert len(files) == 1
    with np.load(files[0]) as z:
        assert z["features"].shape == (359, 128) and z["sigma"].shape == (128, 128)


def test_only_requested_keys_and_seeded_sampling(digits, cache_dir):
    def gaussian(n, g):
        return (0.5 * torch.randn(n, 1, 16, 16, generator=g)).clamp(-1, 1)

    spec = EvalSpec(metrics=("fid", "is"), num_samples=64, seed=3, batch_size=50, cache_dir=cache_dir)
    a, pa = evaluate_samples(gaussian, digits, spec, CPU)
    b, _ = evaluate_samples(gaussian, digits, spec, CPU)
    assert set(a) == {"fid", "is_mean", "is_std"} and a == b
    assert pa["num_reference"] == 64 and pa["isc_splits"] == 10
    c, _ = evaluate_samples(gaussian, digits, EvalSpec(metrics=("fid",), num_samples=64, seed=4, cache_dir=cache_dir),
                            CPU)
    assert c["fid"] != a["fid"]
    m, _ = evaluate_samples(gaussian, digits, EvalSpec(metrics=("modes",), num_samples=64, cache_dir=cache_dir), CPU)
    assert set(m) == {"modes", "class_kl"}


def test_nan_samples_still_score(digits, cache_dir):
    spec = EvalSpec(metrics=("fid", "prc"), num_samples=32, cache_dir=cache_dir)
    m, _ = evaluate_samples(lambda n, g: torch.full((n, 1, 16, 16), float("nan")), digits, spec, CPU)
    assert np.isfinite(m["fid"]) and m["precision"] <= 1


def test_bad_sampler_output(digits, cache_dir):
    spec = EvalSpec(metrics=("fid",), num_samples=16, cache_dir=cache_dir)
    with pytest.raises(MetricError, match="shape"):
        evaluate_samples(lambda n, g: torch.zeros(n, 3, 16, 16), digits, spec, CPU)
    with pytest.raises(MetricError):
        evaluate_samples(lambda n, g: None, digits, spec, CPU)
    with pytest.raises(MetricError):
        evaluate_samples(lambda n, g: torch.zeros(n, 1, 16, 16), digits, {"metrics": ("fid",)}, CPU)
