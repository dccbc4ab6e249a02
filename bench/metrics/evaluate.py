"""evaluate_samples: score a sampler on a dataset according to an EvalSpec.

Sampling: ``sample_fn(n, generator)`` is called with n <= spec.batch_size and one
``torch.Generator(device=device)`` seeded with ``spec.seed``, until enough samples are drawn; the
first ``num_samples`` images are the scored set, so they do not depend on which metrics were asked.

Images, per requested name:
  fid, is, kid, prc -> torch-fidelity's metric functions on features of the generated images and of
      the test-split reference (cached); dc -> prdc density/coverage (k=5) on the SAME features;
  modes -> stacked sets: ``stacked_modes``/``stacked_kl`` over ``stacked_samples`` samples, each
      channel classified by the digit classifier; 10-class sets: ``modes``/``class_kl`` over the
      ``num_samples`` scored samples.
2-D sets: modes -> ``mode_coverage_2d`` on 2,500 samples; the image metrics do not apply (skipped).
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import torch

from .classifier import FEATURE_LAYER, TrainedClassifier, get_classifier, is_stacked
from .errors import MetricError
from .extractors import LOGITS_LAYER, classifier_extractor_name, create_classifier_extractor, extract_features
from .fidelity import (REFERENCE_SPLIT, REFERENCE_SUBSET_SEED, blas_threads_for, fidelity_kwargs, fidelity_metrics,
                       reference_features, torch_fidelity_version)
from .images import from_uint8, to_uint8
from .inception import (INCEPTION_FEATURE_LAYER, INCEPTION_LOGITS_LAYER, INCEPTION_NAME,
                        create_inception_extractor, has_classifier_head, resolve_inception_weights,
                        weights_sha256)
from .modes2d import HQ_SIGMAS, mode_coverage_2d
from .modes_strict import STRICT_SHARE
from .prdc_metrics import DC_NEAREST_K, dc_nearest_k, density_coverage, prdc_version
from .protocol import EvalSpec
from .stacked import class_mode_coverage, stacked_mode_coverage

NUM_SAMPLES_2D = 2500
FEATURE_METRICS = ("fid", "is", "kid", "prc", "dc")
REFERENCE_METRICS = ("fid", "kid", "prc", "dc")

_lock = threading.RLock()
_extractors: "OrderedDict[tuple, object]" = OrderedDict()
_EXTRACTOR_MEMO = 3


def _draw(sample_fn, n: int, dataset, spec: EvalSpec, device: torch.device, on_batch) -> None:
    gen = torch.Generator(device=device)
    gen.manual_seed(spec.seed)
    done = 0
    while done < n:
        b = min(spec.batch_size, n - done)
        with torch.no_grad():  # in case the sampler does not do it itself
            x = sample_fn(b, gen)
        if not torch.is_tensor(x):
            raise MetricError(f"sample_fn must return a tensor, got {type(x).__name__}")
        if tuple(x.shape) != (b, *dataset.shape):
            raise MetricError(f"sample_fn({b}) returned shape {tuple(x.shape)}, expected {(b, *dataset.shape)}")
        on_batch(x.detach(), done)
        done += b


def _evaluate_2d(sample_fn, dataset, spec: EvalSpec, device: torch.device):
    protocol = {"dataset": dataset.name, "kind": "2d", "metrics": [m for m in spec.metrics if m == "modes"],
                "seed": spec.seed}
    if "modes" not in spec.metrics:
        return {}, protocol
    parts: list[torch.Tensor] = []
    _draw(sample_fn, NUM_SAMPLES_2D, dataset, spec, device, lambda x, _: parts.append(x.to("cpu", torch.float32)))
    metrics = mode_coverage_2d(torch.cat(parts), dataset)
    protocol.update({
        "num_generated": NUM_SAMPLES_2D, "num_modes": int(dataset.num_modes), "sigma": float(dataset.sigma),
        "mode_protocol": f"PacGAN/VEEGAN: high quality = within {HQ_SIGMAS:g} sigma of the nearest centre; "
                         "a mode is covered by >= 1 high-quality sample; reverse_kl = KL(q||uniform) over "
                         "high-quality samples, empty bins skipped, log K if none",
        # a protocol key of its own: records scored before modes_strict existed hash differently,
        # so they are not compared with records that have it
        "modes_strict": f"modes with >= {STRICT_SHARE:g} x N/K high-quality samples nearest them",
    })
    return metrics, protocol


def _memo_extractor(key: tuple, make):
    with _lock:
        if key in _extractors:
            _extractors.move_to_end(key)
            return _extractors[key]
    ext = make()
    with _lock:
        _extractors[key] = ext
        while len(_extractors) > _EXTRACTOR_MEMO:
            _extractors.popitem(last=False)
    return ext


def _predict_labels(net, x: torch.Tensor, per_channel: bool) -> torch.Tensor:
    """uint8 images -> predicted classes [B] (or [B, 3] per channel for stacked sets)."""
    xf = from_uint8(x)
    if per_channel:
        b, c = xf.shape[:2]
        _, logits = net(xf.reshape(b * c, 1, *xf.shape[2:]))
        return logits.argmax(1).reshape(b, c)
    _, logits = net(xf)
    return logits.argmax(1)


def _evaluate_images(sample_fn, dataset, spec: EvalSpec, device: torch.device):
    want = set(spec.metrics)
    need_feats = bool(want & set(FEATURE_METRICS))
    need_ref = bool(want & set(REFERENCE_METRICS))
    need_modes = "modes" in want
    stacked = is_stacked(dataset)
    cuda = device.type == "cuda"
    n_gen = spec.num_samples
    n_modes = (spec.stacked_samples if stacked else n_gen) if need_modes else 0
    n_draw = max(n_gen if need_feats else 0, n_modes)
    protocol: dict = {"dataset": dataset.name, "kind": "image", "metrics": list(spec.metrics),
                      "extractor": spec.extractor, "seed": spec.seed, "num_generated": n_gen if need_feats else 0,
                      "torch_fidelity_version": torch_fidelity_version()}
    skipped: dict[str, str] = {}

    clf: TrainedClassifier | None = None
    if need_modes or (need_feats and spec.extractor == "classifier"):
        if dataset.train_labels is None or not dataset.num_classes:
            if need_modes:
                skipped["modes"] = "dataset has no class labels"
                need_modes, n_modes = False, 0
                n_draw = n_gen if need_feats else 0
        else:
            clf = get_classifier(dataset, spec.cache_dir)
            protocol["classifier"] = clf.protocol()

    # feature extractor (built before sampling so a missing weights file fails fast)
    extractor = None
    use_logits = "is" in want
    if need_feats:
        if spec.extractor == "classifier":
            if clf is None:
                raise MetricError(f"the classifier extractor needs a labelled dataset; {dataset.name} has no labels")
            ext_name = classifier_extractor_name(clf)
            extractor = _memo_extractor(("clf", ext_name, str(device)),
                                        lambda: create_classifier_extractor(clf, cuda))
            w_sha, layer, logits_layer, ext_key = clf.weights_sha256, FEATURE_LAYER, LOGITS_LAYER, ext_name
        else:
            path = resolve_inception_weights(spec.inception_weights, spec.cache_dir)
            w_sha = weights_sha256(path)
            if use_logits and not has_classifier_head(path):
                use_logits = False
                skipped["is"] = "Inception weights have no classifier head (converted fid-helper weights)"
            extractor = _memo_extractor(("inception", w_sha, str(device), use_logits),
                                        lambda: create_inception_extractor(path, cuda, use_logits))
            ext_name, layer, logits_layer = INCEPTION_NAME, INCEPTION_FEATURE_LAYER, INCEPTION_LOGITS_LAYER
            ext_key = f"{INCEPTION_NAME}-{w_sha[:16]}"
        protocol.update({"extractor_name": ext_name, "weights_sha256": w_sha, "feature_layer": layer,
                         "logits_layer": logits_layer if use_logits else None})

    # draw samples: keep the first n_gen as uint8, classify the first n_modes
    kept: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    net = clf.build(device) if (need_modes and clf is not None) else None

    def on_batch(x: torch.Tensor, offset: int) -> None:
        xq = to_uint8(x)
        if need_feats and offset < n_gen:
            kept.append(xq[: n_gen - offset].cpu())
        if net is not None and offset < n_modes:
            with torch.inference_mode():
                labels.append(_predict_labels(net, xq[: n_modes - offset].to(device), clf.per_channel).cpu())

    if n_draw:
        _draw(sample_fn, n_draw, dataset, spec, device, on_batch)

    metrics: dict[str, float] = {}
    if need_feats:
        gen_images = torch.cat(kept)
        rgb = spec.extractor != "classifier"
        feats = extract_features(extractor, gen_images, spec.batch_size, device, rgb=rgb)
        gen_feats = feats[layer]
        protocol["feature_dim"] = int(gen_feats.shape[1])
        ref_feats = ref_stats = None
        n_ref = 0
        if need_ref:
            n_ref = min(len(dataset.test), spec.ref_samples if spec.ref_samples is not None else spec.num_samples)
            if n_ref < 4:
                raise MetricError(f"{dataset.name} has only {len(dataset.test)} test images; need at least 4")

            def extract_ref(images: torch.Tensor) -> torch.Tensor:
                return extract_features(extractor, images, spec.batch_size, device, rgb=rgb)[layer]

            ref_feats, ref_stats = reference_features(dataset, n_ref, ext_key, extract_ref, spec.cache_dir)
        kw = fidelity_kwargs(n_gen, max(n_ref, 2))
        with blas_threads_for(int(gen_feats.shape[1])):
            metrics.update(fidelity_metrics(want, gen_feats, feats.get(logits_layer) if use_logits else None,
                                            ref_feats, ref_stats, kw))
            if "dc" in want:
                k = dc_nearest_k(n_ref, n_gen, DC_NEAREST_K)
                metrics.update(density_coverage(ref_feats.numpy(), gen_feats.numpy(), k))
                protocol.update({"dc_nearest_k": k, "prdc_version": prdc_version()})
        protocol.update({"num_reference": n_ref, "reference_split": REFERENCE_SPLIT if need_ref else None,
                         "reference_subset": (None if not need_ref else "all" if n_ref >= len(dataset.test)
                                              else f"seeded permutation (seed {REFERENCE_SUBSET_SEED}), sorted"),
                         "isc_splits": kw["isc_splits"], "kid_subsets": kw["kid_subsets"],
                         "kid_subset_size": kw["kid_subset_size"], "prc_neighborhood": kw["prc_neighborhood"]})

    if need_modes and labels:
        y = torch.cat(labels)
        if stacked:
            metrics.update(stacked_mode_coverage(y, dataset.num_classes))
        else:
            metrics.update(class_mode_coverage(y, dataset.num_classes))
        protocol.update({"mode_samples": int(len(y)), "num_modes": int(dataset.num_modes),
                         "mode_protocol": "mode = classifier prediction (per channel for stacked sets), no "
                                          "confidence threshold; KL(q||uniform) over all modes, empty bins skipped"})
    if skipped:
        protocol["skipped"] = skipped
    return metrics, protocol


def evaluate_samples(sample_fn, dataset, spec: EvalSpec, device: torch.device) -> tuple[dict[str, float], dict]:
    """Score ``sample_fn`` on ``dataset``; returns (metrics, protocol) -- both JSON-able dicts."""
    if not isinstance(spec, EvalSpec):
        raise MetricError(f"spec must be an EvalSpec, got {type(spec).__name__}")
    device = torch.device(device)
    if dataset.kind == "2d":
        return _evaluate_2d(sample_fn, dataset, spec, device)
    if dataset.kind == "image":
        return _evaluate_images(sample_fn, dataset, spec, device)
    raise MetricError(f"unknown dataset kind {dataset.kind!r} for {dataset.name}")
