"""Datasets for ganbench: 2-D mixtures, digits, (stacked) MNIST, Fashion-MNIST, CIFAR-10.

``load_dataset`` caches results in-process and returns the SAME ``Dataset`` object for the same
arguments: treat its tensors as read-only (clone before modifying). Nothing downloads unless
``download=True``; loading is deterministic for a seed and never touches global RNG state.
"""
from __future__ import annotations

import difflib
import os
import pathlib
import threading
from collections import OrderedDict

from bench.core.config import normalize_name

from .base import DataError, Dataset, mode_ids

__all__ = [
    "Dataset",
    "DataError",
    "load_dataset",
    "dataset_names",
    "dataset_kind",
    "dataset_traits",
    "normalize_name",
    "dataset_resolutions",
    "default_data_root",
    "mode_ids",
    "clear_cache",
]

# name -> (kind, allowed resolutions with the default first; () for 2-D, uses seed, uses root)
_SPECS: dict[str, tuple[str, tuple[int, ...], bool, bool]] = {
    "ring8": ("2d", (), True, False),
    "grid25": ("2d", (), True, False),
    "ring8-pacgan": ("2d", (), True, False),
    "grid25-pacgan": ("2d", (), True, False),
    "digits": ("image", (16,), False, False),
    "stacked-digits": ("image", (16,), True, False),
    "mnist": ("image", (28, 16), False, True),
    "fashion-mnist": ("image", (28, 16), False, True),
    "stacked-mnist": ("image", (28, 16), True, True),
    "cifar10": ("image", (32, 16), False, True),
}
_CACHE_SIZE = 8
_cache: OrderedDict[tuple, Dataset] = OrderedDict()
_lock = threading.RLock()


def dataset_names() -> list[str]:
    return sorted(_SPECS)


def _canonical(name: str) -> str:
    if not isinstance(name, str):
        raise DataError(f"dataset name must be a string, got {name!r}")
    key = normalize_name(name)
    if key in _SPECS:
        return key
    close = difflib.get_close_matches(key, dataset_names(), n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise DataError(f"unknown dataset {name!r}; {hint}(known: {', '.join(dataset_names())})")


def dataset_kind(name: str) -> str:
    """'2d' or 'image', without loading anything. DataError if the name is unknown."""
    return _SPECS[_canonical(name)][0]


# Sets with one class label per sample (stacked sets have one per channel): what a trick that
# `needs = {"class_labels"}` asks for.
_CLASS_LABELLED = frozenset({"digits", "mnist", "fashion-mnist", "cifar10"})


def dataset_traits(name: str) -> frozenset[str]:
    """What a dataset offers beyond its kind, without loading anything: {"class_labels"} for sets
    with one class label per sample. DataError if the name is unknown."""
    return frozenset({"class_labels"}) if _canonical(name) in _CLASS_LABELLED else frozenset()


def dataset_resolutions(name: str) -> tuple[int, ...]:
    """Allowed ``resolution`` values, default first; () for 2-D sets (resolution must be None)."""
    return _SPECS[_canonical(name)][1]


def default_data_root() -> pathlib.Path:
    """$GANBENCH_DATA if set, else ~/.cache/ganbench/data."""
    env = os.environ.get("GANBENCH_DATA")
    return pathlib.Path(env).expanduser() if env else pathlib.Path.home() / ".cache" / "ganbench" / "data"


def _check_resolution(name: str, resolution) -> int | None:
    allowed = _SPECS[name][1]
    if not allowed:
        if resolution is not None:
            raise DataError(f"{name} is a 2-D dataset; resolution must not be set (got {resolution!r})")
        return None
    if resolution is None:
        return allowed[0]
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution not in allowed:
        raise DataError(
            f"resolution {resolution!r} not supported for {name}; allowed: {', '.join(map(str, allowed))}"
        )
    return resolution


def _build(name: str, seed: int, resolution: int | None, root: pathlib.Path | None, download: bool) -> Dataset:
    if name in ("ring8", "grid25", "ring8-pacgan", "grid25-pacgan"):
        from .synthetic import load_mixture

        return load_mixture(name, seed)
    if name == "digits":
        from .digits import load_digits16

        return load_digits16()
    if name in ("stacked-digits", "stacked-mnist"):
        from .stacked import make_stacked

        base = name.removeprefix("stacked-")
        return make_stacked(name, load_dataset(base, resolution=resolution, root=root, download=download), seed)
    if name == "cifar10":
        from .torchvision_sets import load_cifar10

        return load_cifar10(root, resolution, download)
    from .torchvision_sets import load_mnist_like

    return load_mnist_like(name, root, resolution, download)


def load_dataset(
    name: str,
    *,
    seed: int = 0,
    resolution: int | None = None,
    root: str | os.PathLike | None = None,
    download: bool = False,
) -> Dataset:
    """Load (or fetch from the in-process cache) a dataset. Returned tensors are shared: do not mutate.

    Raises DataError (one-line message) for unknown names, bad options and missing files.
    """
    name = _canonical(name)
    kind, _, uses_seed, uses_root = _SPECS[name]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    resolution = _check_resolution(name, resolution)
    if uses_root:
        try:
            root_path = pathlib.Path(os.fspath(root)) if root is not None else default_data_root()
        except TypeError:
            raise DataError(f"data root must be a path, got {root!r}") from None
        root_path = root_path.expanduser().absolute()
    else:
        root_path = None
    key = (name, seed if uses_seed else 0, resolution, str(root_path) if root_path else None)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
        ds = _build(name, key[1], resolution, root_path, bool(download))
        _cache[key] = ds
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
        return ds


def clear_cache() -> None:
    """Forget every cached dataset (e.g. in tests, or to free memory)."""
    with _lock:
        _cache.clear()
