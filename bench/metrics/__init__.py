"""Metrics for ganbench: mode coverage (2-D and stacked), FID/IS/KID/PR via torch-fidelity,
density/coverage via prdc, on the suite's own classifier features or Inception-v3.

Public API::

    evaluate_samples(sample_fn, dataset, spec, device) -> (metrics, protocol)
    EvalSpec, MetricError, METRIC_DIRECTIONS, available_metrics
    mode_coverage_2d(samples, dataset), stacked_mode_coverage(channel_labels), class_mode_coverage(labels, k)
    convert_fid_helper_weights(torchscript_path, out_path) -> sha256, locate_fid_helper_weights()
    install_inception_weights(cache_dir=None, out_path=None) -> (path, sha256)  # `ganbench weights inception`
    get_classifier(dataset, cache_dir)  # the per-dataset CNN (trained and cached on first use)
"""
from __future__ import annotations

from .classifier import get_classifier
from .errors import MetricError
from .evaluate import evaluate_samples
from .inception import convert_fid_helper_weights, install_inception_weights, locate_fid_helper_weights
from .modes2d import mode_coverage_2d
from .names import METRIC_DIRECTIONS, METRIC_KEYS, available_metrics
from .protocol import EvalSpec
from .stacked import class_mode_coverage, stacked_mode_coverage

__all__ = [
    "EvalSpec",
    "METRIC_DIRECTIONS",
    "METRIC_KEYS",
    "MetricError",
    "available_metrics",
    "class_mode_coverage",
    "convert_fid_helper_weights",
    "evaluate_samples",
    "get_classifier",
    "install_inception_weights",
    "locate_fid_helper_weights",
    "mode_coverage_2d",
    "stacked_mode_coverage",
]
