"""Metric names: what an EvalSpec may request, which keys each request yields, and their direction."""
from __future__ import annotations

import difflib

from .errors import MetricError

# EvalSpec.metrics entry -> result keys it may produce (which ones depends on the dataset).
METRIC_KEYS: dict[str, tuple[str, ...]] = {
    "fid": ("fid",),
    "is": ("is_mean", "is_std"),
    "kid": ("kid_mean", "kid_std"),
    "prc": ("precision", "recall"),
    "dc": ("density", "coverage"),
    # 2-D sets: modes/high_quality/reverse_kl/modes_strict; stacked sets: stacked_modes/
    # stacked_kl; 10-class image sets: modes/class_kl.
    "modes": ("modes", "high_quality", "reverse_kl", "modes_strict", "stacked_modes", "stacked_kl",
              "class_kl"),
}

EXTRACTORS: tuple[str, ...] = ("classifier", "inception-v3-compat")

# Result key -> "up" (higher is better) or "down" (lower is better); the table lives in a
# torch-free module so that reports can read it without importing this package.
from bench.core.metric_directions import METRIC_DIRECTIONS  # noqa: E402  (re-exported)


def available_metrics(kind: str | None = None) -> tuple[str, ...]:
    """Names accepted in ``EvalSpec.metrics``; with ``kind`` ('2d' or 'image') only those that apply."""
    if kind is None or kind == "image":
        return tuple(METRIC_KEYS)
    if kind == "2d":
        return ("modes",)
    raise MetricError(f"unknown data kind {kind!r}; expected '2d' or 'image'")


def check_metric_names(names) -> tuple[str, ...]:
    if isinstance(names, str):
        names = (names,)
    try:
        names = tuple(names)
    except TypeError:
        raise MetricError(f"metrics must be a sequence of names, got {names!r}") from None
    if not names:
        raise MetricError(f"no metrics requested; accepted: {', '.join(METRIC_KEYS)}")
    out = []
    for n in names:
        if not isinstance(n, str) or n not in METRIC_KEYS:
            close = difflib.get_close_matches(str(n), list(METRIC_KEYS), n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise MetricError(f"unknown metric {n!r}; {hint}accepted: {', '.join(METRIC_KEYS)}")
        if n not in out:
            out.append(n)
    return tuple(out)


def check_extractor(name) -> str:
    if name not in EXTRACTORS:
        raise MetricError(f"unknown feature extractor {name!r}; accepted: {', '.join(EXTRACTORS)}")
    return name
