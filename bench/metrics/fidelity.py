"""torch-fidelity glue: reference features (cached on disk) and FID / IS / KID / PR from features.

The metric math is torch-fidelity's own: the same ``*_featuresdict_to_metric`` /
``fid_statistics_to_metric`` functions that ``torch_fidelity.calculate_metrics`` calls, fed with
features we extract once per set, so the same features also serve density/coverage (prdc) and no
set is pushed through the extractor twice. ``tests/test_metrics_fidelity.py`` checks that the
results equal ``calculate_metrics`` on the same images.
"""
from __future__ import annotations

import contextlib
import hashlib
import re
import threading
from collections import OrderedDict

import numpy as np
import torch

from .cache import atomic_savez, cache_root, update_with_tensor
from .images import to_uint8

ISC_SPLITS = 10
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
PRC_NEIGHBORHOOD = 3
RNG_SEED = 2020  # torch-fidelity's default seed for IS shuffling and KID subsets
REFERENCE_SPLIT = "test"
REFERENCE_SUBSET_SEED = 0

_lock = threading.RLock()
_ref_memo: "OrderedDict[str, tuple[torch.Tensor, dict]]" = OrderedDict()
_REF_MEMO_SIZE = 8


def torch_fidelity_version() -> str:
    import torch_fidelity

    return str(torch_fidelity.__version__)


def fidelity_kwargs(n_gen: int, n_ref: int) -> dict:
    """The torch-fidelity options of our protocol, reduced where the sets are small."""
    return {
        "verbose": False,
        "isc_splits": max(1, min(ISC_SPLITS, n_gen)),
        "samples_shuffle": True,
        "rng_seed": RNG_SEED,
        "kid_subsets": KID_SUBSETS,
        "kid_subset_size": max(2, min(KID_SUBSET_SIZE, n_gen, n_ref)),
        "kid_kernel": "poly",
        "kid_kernel_poly_degree": 3,
        "kid_kernel_poly_gamma": None,
        "kid_kernel_poly_coef0": 1,
        "prc_neighborhood": max(1, min(PRC_NEIGHBORHOOD, n_gen - 1, n_ref - 1)),
        "prc_batch_size": 10000,
        "save_cpu_ram": False,
    }


def reference_indices(n_total: int, n: int) -> torch.Tensor:
    """All indices if n >= n_total, else n indices of a fixed (seed 0) permutation, sorted."""
    if n >= n_total:
        return torch.arange(n_total)
    g = torch.Generator().manual_seed(REFERENCE_SUBSET_SEED)
    return torch.randperm(n_total, generator=g)[:n].sort().values


def reference_images(dataset, n: int) -> torch.Tensor:
    """uint8 reference images: ``n`` images of the test split (see ``reference_indices``)."""
    idx = reference_indices(len(dataset.test), n)
    return to_uint8(dataset.test[idx])


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s)


def reference_features(dataset, n: int, extractor_key: str, extract, cache_dir=None) -> tuple[torch.Tensor, dict]:
    """Reference features [n, D] and their FID statistics, cached per (dataset, split, extractor+weights, n, data).

    ``extract(uint8 images) -> float features`` is called only on a cache miss. The file is
    ``<cache>/reference/ref-<dataset>-test-<extractor_key>-n<n>-<data sha256[:16]>.npz``.
    """
    images = reference_images(dataset, n)
    h = hashlib.sha256()
    update_with_tensor(h, images)
    name = f"ref-{_safe(dataset.name)}-{REFERENCE_SPLIT}-{_safe(extractor_key)}-n{len(images)}-{h.hexdigest()[:16]}.npz"
    path = cache_root(cache_dir) / "reference" / name
    key = str(path)
    with _lock:
        if key in _ref_memo:
            _ref_memo.move_to_end(key)
            return _ref_memo[key]
    feats = stats = None
    if path.exists():
        try:
            with np.load(path) as z:
                feats = torch.from_numpy(z["features"].copy())
                stats = {"mu": z["mu"].copy(), "sigma": z["sigma"].copy()}
        except Exception:  # partial/corrupt file: recompute
            feats = stats = None
    if feats is None:
        from torch_fidelity.metric_fid import fid_features_to_statistics

        feats = extract(images).to(torch.float32).contiguous()
        stats = fid_features_to_statistics(feats)
        atomic_savez(path, features=feats.numpy(), mu=stats["mu"], sigma=stats["sigma"])
    with _lock:
        _ref_memo[key] = (feats, stats)
        while len(_ref_memo) > _REF_MEMO_SIZE:
            _ref_memo.popitem(last=False)
    return feats, stats


SMALL_FEATURE_DIM = 512


def blas_threads_for(dim: int):
    """Single-threaded BLAS for small features: the KID/PR/DC products are ~(1000 x d x 1000) and
    a BLAS thread pool costs more than it saves there (4-40x slower on a busy 2-core box)."""
    if dim > SMALL_FEATURE_DIM:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


def fidelity_metrics(want: set[str], gen_feats: torch.Tensor | None, gen_logits: torch.Tensor | None,
                     ref_feats: torch.Tensor | None, ref_stats: dict | None, kwargs: dict) -> dict[str, float]:
    """FID / IS / KID / PR (torch-fidelity functions) for the requested spec names in ``want``."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_isc import KEY_METRIC_ISC_MEAN, KEY_METRIC_ISC_STD, isc_features_to_metric
    from torch_fidelity.metric_kid import KEY_METRIC_KID_MEAN, KEY_METRIC_KID_STD, kid_features_to_metric
    from torch_fidelity.metric_prc import KEY_METRIC_PRECISION, KEY_METRIC_RECALL, prc_features_to_metric

    out: dict[str, float] = {}
    if "fid" in want:
        stats = fid_features_to_statistics(gen_feats)
        out["fid"] = float(fid_statistics_to_metric(stats, ref_stats, False)[KEY_METRIC_FID])
    if "is" in want and gen_logits is not None:
        r = isc_features_to_metric(gen_logits, kwargs["isc_splits"], kwargs["samples_shuffle"], kwargs["rng_seed"])
        out["is_mean"], out["is_std"] = float(r[KEY_METRIC_ISC_MEAN]), float(r[KEY_METRIC_ISC_STD])
    if "kid" in want:
        r = kid_features_to_metric(gen_feats, ref_feats, **kwargs)
        out["kid_mean"], out["kid_std"] = float(r[KEY_METRIC_KID_MEAN]), float(r[KEY_METRIC_KID_STD])
    if "prc" in want:
        r = prc_features_to_metric(gen_feats, ref_feats, **kwargs)
        out["precision"], out["recall"] = float(r[KEY_METRIC_PRECISION]), float(r[KEY_METRIC_RECALL])
    return out
