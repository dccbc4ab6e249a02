"""The suite's own classifier: accuracy, deterministic retraining, caching, torch-fidelity registration."""
import pathlib

import pytest
import torch

from bench.data import load_dataset
from bench.metrics import MetricError, get_classifier
from bench.metrics import classifier as clf_mod
from bench.metrics.extractors import create_classifier_extractor, register_classifier_extractor


def test_digits_classifier_accuracy_and_cache_file(cache_dir):
    clf = get_classifier(load_dataset("digits"), cache_dir)
    assert clf.test_accuracy >= 0.95
    assert pathlib.Path(clf.path).is_file() and pathlib.Path(clf.path).parent.name == "classifiers"
    p = clf.protocol()
    assert len(p["recipe_hash"]) == 64 and len(p["weights_sha256"]) == 64 and p["per_channel"] is False


def test_retraining_with_same_seed_is_bit_identical(cache_dir, tmp_path):
    ds = load_dataset("digits")
    a = get_classifier(ds, cache_dir)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # training pins its own thread count; the ambient one must not matter
    try:
        b = get_classifier(ds, tmp_path / "fresh")  # trains again from scratch
    finally:
        torch.set_num_threads(threads)
    assert b.path != a.path
    assert a.weights_sha256 == b.weights_sha256
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.test_accuracy == b.test_accuracy


def test_cache_hit_loads_without_training(cache_dir, monkeypatch):
    ds = load_dataset("digits")
    first = get_classifier(ds, cache_dir)
    monkeypatch.setattr(clf_mod, "_loaded", {})  # forget the in-process copy: must come from disk

    def boom(*a, **k):
        raise AssertionError("retrained despite a cached classifier")

    monkeypatch.setattr(clf_mod, "train_classifier", boom)
    again = get_classifier(ds, cache_dir)
    assert again.weights_sha256 == first.weights_sha256


def test_stacked_digits_share_the_digit_classifier(cache_dir):
    a = get_classifier(load_dataset("digits"), cache_dir)
    s = get_classifier(load_dataset("stacked-digits"), cache_dir)
    assert s.weights_sha256 == a.weights_sha256 and s.path == a.path
    assert s.per_channel and not a.per_channel


def test_registered_with_torch_fidelity_under_hashed_name(cache_dir):
    from torch_fidelity.registry import FEATURE_EXTRACTORS_REGISTRY

    clf = get_classifier(load_dataset("digits"), cache_dir)
    name = register_classifier_extractor(clf)
    assert clf.weights_sha256[:16] in name and name in FEATURE_EXTRACTORS_REGISTRY
    assert register_classifier_extractor(clf) == name  # idempotent
    ext = create_classifier_extractor(clf, cuda=False)
    x = torch.randint(0, 256, (5, 1, 16, 16), dtype=torch.uint8)
    feats, logits = ext(x)
    assert feats.shape == (5, 128) and logits.shape == (5, 10)
    with pytest.raises(ValueError):
        ext(x.float())


def test_stacked_extractor_features_and_joint_logits(cache_dir):
    ds = load_dataset("stacked-digits")
    clf = get_classifier(ds, cache_dir)
    ext = create_classifier_extractor(clf, cuda=False)
    x = torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8)
    feats, logits = ext(x)
    assert feats.shape == (4, 384) and logits.shape == (4, 1000)
    net = clf.build()
    per = [net((x[:, c:c + 1].float() / 127.5) - 1) for c in range(3)]
    assert torch.allclose(feats, torch.cat([f for f, _ in per], 1), atol=1e-5)
    p = logits.softmax(1).reshape(4, 10, 10, 10)
    pa, pb, pc = (l.softmax(1) for _, l in per)
    assert torch.allclose(p, pa[:, :, None, None] * pb[:, None, :, None] * pc[:, None, None, :], atol=1e-5)
    best = logits.argmax(1)
    assert torch.equal(best, 100 * pa.argmax(1) + 10 * pb.argmax(1) + pc.argmax(1))


def test_needs_a_labelled_image_dataset(cache_dir):
    with pytest.raises(MetricError):
        get_classifier(load_dataset("ring8"), cache_dir)
