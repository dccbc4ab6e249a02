"""EvalSpec: what to measure and how (validated on construction)."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import MetricError
from .names import check_extractor, check_metric_names


def _int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise MetricError(f"EvalSpec.{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class EvalSpec:
    """How a cell is scored. Invalid values raise MetricError (one line) on construction.

    metrics: subset of ("fid", "is", "kid", "prc", "dc", "modes"); not-applicable ones are skipped
        (on 2-D sets only "modes" applies).
    extractor: "classifier" (the suite's own CNN, default, fast on CPU) or "inception-v3-compat".
    num_samples: generated images scored; the reference is min(len(test), num_samples) test images
        unless ref_samples is set.
    stacked_samples: generated samples whose modes are counted on stacked sets.
    seed: seeds the torch.Generator handed to the sampler.
    inception_weights: torch-fidelity-layout state dict for "inception-v3-compat"; None = torch-fidelity's
        own file (downloads; fails offline with a MetricError saying how to provide weights).
    cache_dir: classifier weights and reference features; None -> $GANBENCH_CACHE or ~/.cache/ganbench.
    """

    metrics: tuple[str, ...] = ("fid", "is", "kid", "prc", "dc", "modes")
    extractor: str = "classifier"
    num_samples: int = 2000
    ref_samples: int | None = None
    stacked_samples: int = 26000
    seed: int = 0
    inception_weights: str | None = None
    batch_size: int = 256
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", check_metric_names(self.metrics))
        check_extractor(self.extractor)
        _int("num_samples", self.num_samples, 4)
        if self.ref_samples is not None:
            _int("ref_samples", self.ref_samples, 4)
        _int("stacked_samples", self.stacked_samples, 1)
        _int("seed", self.seed, 0)
        _int("batch_size", self.batch_size, 1)
        for name in ("inception_weights", "cache_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                try:
                    import os

                    object.__setattr__(self, name, os.fspath(value))
                except TypeError:
                    raise MetricError(f"EvalSpec.{name} must be a path or None, got {value!r}") from None
