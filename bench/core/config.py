"""Frozen configs for one training run (a *cell*) and its stable id.

A cell id is the sha256 of the canonical JSON of the cell config, so the same cell gets the same
id in every process and on every machine, and a stored cell is never trained twice. Only fields
that change the result belong here: where results go (store path) and how many workers run do not.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Mapping

# Bump when a change to the harness makes old records incomparable (it is part of every id).
HARNESS_VERSION = 1

# Metadata for config fields added after the first release: such a field enters the cell id only
# when it differs from its default, so adding an option never changes the ids of existing cells.
# Use as `new_field: int = field(default=0, metadata=OPTIONAL)`.
OPTIONAL = {"id": "when-not-default"}

# TrainConfig.g_loss values; G_LOSSES in bench/trickapi/losses.py holds the functions (kept
# torch-free here)
G_LOSS_NAMES = ("non_saturating", "minimax")


def prune_optional(obj: Any, d: dict[str, Any]) -> dict[str, Any]:
    """Drop OPTIONAL fields at their defaults from `asdict(obj)`, recursively."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if f.metadata.get("id") == "when-not-default" and f.name in d:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            if value == default:
                del d[f.name]
                continue
        if dataclasses.is_dataclass(value) and isinstance(d.get(f.name), dict):
            prune_optional(value, d[f.name])
    return d


MAX_SEED = 2**32 - 1  # numpy's seed range; seeds are stored as SQLite integers


class ConfigError(ValueError):
    """A config value is invalid; the message is one line meant for the user."""


# Sane maxima: a grid or command asking for more is refused before anything runs (a typo such as
# steps = 1000000000000 would train without end; depth = 1e8 allocates until the OS refuses).
# Each can be raised with $GANBENCH_MAX_<KEY>, e.g. GANBENCH_MAX_STEPS=50000000.
LIMITS = {
    "steps": 10_000_000,      # generator updates of one cell
    "batch_size": 65_536,
    "width": 4_096,           # MLP hidden units / DCGAN channels
    "depth": 64,              # MLP hidden layers
    "z_dim": 4_096,
    "resolution": 1_024,      # image side in pixels
    "seeds": 1_000,           # seeds (or tuning seeds) of one grid dataset
    "cells": 20_000,          # cells of one grid
    "threads": 256,           # torch CPU threads of one cell
}


def env_threads() -> int:
    """Torch CPU threads of a cell ($GANBENCH_CELL_THREADS, default 1). CPU kernels may sum in
    another order with another thread count, so it is part of the cell (TrainConfig.threads,
    in the id when not 1): the same id always means the same count."""
    text = os.environ.get("GANBENCH_CELL_THREADS", "1")
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"GANBENCH_CELL_THREADS must be an integer >= 1, got {text!r}") from None
    check_int("GANBENCH_CELL_THREADS", value, 1)
    return value


def limit(key: str) -> int:
    """The maximum of `key`: $GANBENCH_MAX_<KEY> when set, else LIMITS[key]."""
    env = f"GANBENCH_MAX_{key.upper()}"
    text = os.environ.get(env)
    if text is None:
        return LIMITS[key]
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{env} must be an integer, got {text!r}") from None
    if value < 1:
        raise ConfigError(f"{env} must be >= 1, got {value}")
    return value


def check_limit(key: str, value: int, what: str | None = None) -> None:
    """ConfigError naming the key, the value, the limit and how to raise it."""
    top = limit(key)
    if value > top:
        raise ConfigError(f"{what or key} = {value} is above the limit of {top} (set "
                          f"GANBENCH_MAX_{key.upper()} to raise it)")


# Where a cell may run (`--device`; not part of a cell): `pick_device` in bench/train/runtime.py
# resolves them. Here so the CLI's parsers name them without importing torch.
DEVICE_CHOICES = ("auto", "cpu", "cuda", "cuda:N")


# -- value checks: every frozen config validates itself, so the CLI, grids and records share them.
# Each raises ConfigError naming the key, the value and what is allowed.
def check_int(key: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key} must be <= {maximum}, got {value!r}")


def check_number(key: str, value: Any, *, low: float, high: float = math.inf,
                 low_open: bool = False, high_open: bool = True) -> None:
    """A finite real number in the interval low..high (open or closed ends as asked)."""
    if high == math.inf:
        allowed = f"a finite number {'>' if low_open else '>='} {low:g}"
    else:
        allowed = (f"a finite number in {'(' if low_open else '['}{low:g}, "
                   f"{high:g}{')' if high_open else ']'}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")
    ok = (math.isfinite(value) and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    if not ok:
        raise ConfigError(f"{key} must be {allowed}, got {value!r}")


def normalize_name(name: str) -> str:
    """The spelling every dataset name is compared in: 'Fashion_MNIST ' -> 'fashion-mnist'."""
    return name.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class DataConfig:
    name: str  # stored in normalize_name's spelling, so 'Ring8' and 'ring8' are one cell id
    resolution: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"dataset name must be a non-empty string, got {self.name!r}")
        object.__setattr__(self, "name", normalize_name(self.name))
        if self.resolution is not None:
            check_int("resolution", self.resolution, 1)
            check_limit("resolution", self.resolution)


ACTIVATIONS = ("default", "tanh")
INITS = ("normal", "orthogonal")
# NetConfig.arch values: "" = chosen by the data kind (MLP for 2-D, DCGAN for images); "pacgan" =
# PacGAN's 2-D nets (bench/nets/pacgan.py: Lin et al. 2018's synthetic-data code)
ARCHS = ("", "pacgan")
# Trick slots (bench.trickapi.trick.SLOTS) that a named architecture's nets already fill, with why:
# a trick claiming one of them conflicts with the arch (bench.trickapi.registry), so a grid stores
# such a cell as `conflict` with this reason instead of failing it when the nets are built.
ARCH_SLOTS: dict[str, dict[str, str]] = {
    "pacgan": {"g_normalization": "PacGAN's G has batch norm in each of its 4 hidden layers "
                                  "(the authors' pacgan_task.py), so its norm slots are taken"},
}


@dataclass(frozen=True)
class NetConfig:
    """Network widths. The architecture is chosen from the data kind ('mlp' for 2-D, 'dcgan' for
    images) unless `arch` names one: "pacgan" is PacGAN's fixed 2-D architecture (its widths and
    depths are the paper code's; `width`, `depth` and `activation` must stay unset)."""

    z_dim: int = 64
    width: int | None = None  # MLP hidden units / channels of G's last feature map; None: per arch
    depth: int = 3  # MLP hidden layers (ignored by the DCGAN nets)
    # the 2-D MLPs' hidden activation: "default" (ReLU in G, LeakyReLU 0.2 in D) or "tanh" (the
    # unrolled-GAN / VEEGAN reference notebooks)
    activation: str = field(default="default", metadata=OPTIONAL)
    # weight init: "normal" N(0, 0.02) (DCGAN) or "orthogonal" (gain 1.4, the unrolled-GAN
    # notebook); biases 0 either way
    init: str = field(default="normal", metadata=OPTIONAL)
    # "" (per data kind) or a named architecture from ARCHS; enters the id only when set
    arch: str = field(default="", metadata=OPTIONAL)

    def __post_init__(self) -> None:
        check_int("z_dim", self.z_dim, 1)
        check_limit("z_dim", self.z_dim)
        if self.width is not None:
            check_int("width", self.width, 1)
            check_limit("width", self.width)
        check_int("depth", self.depth, 1)
        check_limit("depth", self.depth)
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                              f"got {self.activation!r}")
        if self.init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.arch not in ARCHS:
            raise ConfigError(f"arch must be one of {', '.join(repr(a) for a in ARCHS)}, "
                              f"got {self.arch!r}")
        if self.arch == "pacgan":
            fixed = [k for k, v in (("width", self.width is not None), ("depth", self.depth != 3),
                                    ("activation", self.activation != "default")) if v]
            if fixed:
                raise ConfigError(f"arch 'pacgan' fixes the nets (G 4x400 ReLU+BN, D 3x200 maxout "
                                  f"x5); do not set {', '.join(fixed)}")

    def check_kind(self, kind: str) -> None:
        """ConfigError when an option does not fit the nets of this data kind."""
        if kind != "2d" and self.arch == "pacgan":
            raise ConfigError("arch 'pacgan' is PacGAN's 2-D architecture; it does not apply to "
                              "image data")
        if kind != "2d" and self.activation != "default":
            raise ConfigError(f"activation is an option of the 2-D MLPs; the DCGAN nets keep "
                              f"theirs (got {self.activation!r})")

    def resolved_width(self, kind: str) -> int:
        if self.arch == "pacgan":
            return 400  # G's hidden width (D's is 200): what step-cost estimates scale with
        return self.width if self.width is not None else (128 if kind == "2d" else 32)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999

    def __post_init__(self) -> None:
        check_number("lr", self.lr, low=0, low_open=True)
        check_number("beta1", self.beta1, low=0, high=1)
        check_number("beta2", self.beta2, low=0, high=1)


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000  # generator updates
    batch_size: int = 64
    g_optim: OptimConfig = field(default_factory=OptimConfig)
    d_optim: OptimConfig = field(default_factory=OptimConfig)
    # "hard": end the cell early (status diverged) on a hard failure flag (bench/core/flags.py)
    stop_on: str = field(default="", metadata=OPTIONAL)
    # G's baseline loss when no trick replaces the adversarial loss (bench/trickapi/losses.py)
    g_loss: str = field(default="non_saturating", metadata=OPTIONAL)
    log_every: int = 50  # loss curves are averaged over this many steps
    checkpoint_every: int = 500  # 0: only when the run stops
    # torch CPU threads the cell runs with ($GANBENCH_CELL_THREADS where grids and `train` build
    # cells): another count may give other bits on the CPU, so it is in the id when not 1
    threads: int = field(default=1, metadata=OPTIONAL)

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 1)
        check_limit("steps", self.steps)
        check_int("batch_size", self.batch_size, 2)  # batch statistics need two samples
        check_limit("batch_size", self.batch_size)
        check_int("log_every", self.log_every, 1)
        check_int("checkpoint_every", self.checkpoint_every, 0)
        check_int("threads", self.threads, 1)
        check_limit("threads", self.threads)
        if self.stop_on not in ("", "hard"):
            raise ConfigError(f"stop_on must be '' or 'hard', got {self.stop_on!r}")
        if self.g_loss not in G_LOSS_NAMES:
            raise ConfigError(f"g_loss must be one of {', '.join(G_LOSS_NAMES)}, "
                              f"got {self.g_loss!r}")
        for key in ("g_optim", "d_optim"):
            if not isinstance(getattr(self, key), OptimConfig):
                raise ConfigError(f"{key} must be an OptimConfig, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class TrickSpec:
    """A trick by registry name with its params, as given (defaults are filled in by the registry).
    `version` pins the trick's implementation; it enters the cell id only when it is not 1, so
    existing ids stay stable and bumping a fixed trick's version gives its cells new ids."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    version: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"trick name must be a non-empty string, got {self.name!r}")
        check_int(f"trick '{self.name}' version", self.version, 1)

    @staticmethod
    def of(name: str, params: Mapping[str, Any] | None = None,
           version: int = 1) -> "TrickSpec":
        return TrickSpec(name, tuple(sorted((params or {}).items())), version)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "params": dict(self.params)}
        if self.version != 1:
            d["version"] = self.version
        return d

    @property
    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)


@dataclass(frozen=True)
class CellConfig:
    data: DataConfig
    net: NetConfig = field(default_factory=NetConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tricks: tuple[TrickSpec, ...] = ()  # kept sorted by name: trick order never changes an id
    seed: int = 0

    def __post_init__(self) -> None:
        for key, cls in (("data", DataConfig), ("net", NetConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, key), cls):
                raise ConfigError(f"{key} must be a {cls.__name__}, got {getattr(self, key)!r}")
        if not all(isinstance(t, TrickSpec) for t in self.tricks):
            raise ConfigError(f"tricks must be TrickSpecs, got {self.tricks!r}")
        ordered = tuple(sorted(self.tricks, key=lambda t: t.name))
        names = [t.name for t in ordered]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"trick {', '.join(repr(n) for n in twice)} is listed twice; "
                              f"list each trick once")
        object.__setattr__(self, "tricks", ordered)
        check_int("seed", self.seed, 0, MAX_SEED)

    @property
    def trick_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.tricks)

    @property
    def label(self) -> str:
        """Short human name: the variant (tricks) without the seed."""
        return "+".join(self.trick_names) or "baseline"

    def to_dict(self) -> dict[str, Any]:
        d = prune_optional(self, dataclasses.asdict(self))
        d["tricks"] = [t.to_dict() for t in self.tricks]
        d["harness_version"] = HARNESS_VERSION
        return d

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> "CellConfig":
        """The cell a `to_dict()` describes; ConfigError (one line) for anything else, e.g. a
        record's config that was edited or planted in a store."""
        try:
            train = dict(d.get("train", {}))
            for key in ("g_optim", "d_optim"):
                if key in train:
                    train[key] = OptimConfig(**train[key])
            return CellConfig(
                data=DataConfig(**d["data"]),
                net=NetConfig(**d.get("net", {})),
                train=TrainConfig(**train),
                tricks=tuple(TrickSpec.of(t["name"], t.get("params"), t.get("version", 1))
                             for t in d.get("tricks", [])),
                seed=d.get("seed", 0),
            )
        except ConfigError:
            raise
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise ConfigError(f"not a cell config ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:160]})") from None

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def cell_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:16]

    @property
    def variant_id(self) -> str:
        """Id of the cell with the seed removed: the seeds of one variant share it (paired seeds)."""
        d = self.to_dict()
        d.pop("seed")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> "CellConfig":
        return dataclasses.replace(self, **changes)
