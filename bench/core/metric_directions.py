"""Metric directions, torch-free: reports (which must not import torch) and the metrics package
both read this table. Result key -> "up" (higher is better) or "down" (lower is better)."""
from __future__ import annotations

METRIC_DIRECTIONS: dict[str, str] = {
    "fid": "down",
    "is_mean": "up",
    "is_std": "down",  # spread of the split scores: an uncertainty, lower = more stable
    "kid_mean": "down",
    "kid_std": "down",
    "precision": "up",
    "recall": "up",
    "density": "up",
    "coverage": "up",
    "modes": "up",
    "high_quality": "up",
    "reverse_kl": "down",
    "modes_strict": "up",
    "stacked_modes": "up",
    "stacked_kl": "down",
    "class_kl": "down",
}
