"""Grid files (TOML) -> cells. A grid reads like a diff over the harness defaults: it lists only
what it changes, and an unknown key is an error.

```toml
description = "what this grid is for"
seeds = [0, 1, 2]
design = "add-one"          # baseline + each trick alone ("baseline" = baseline only)
tricks = ["*"]              # name patterns; default: every registered trick

[[data]]                    # one table per dataset
name = "ring8"
steps = 2000
batch_size = 256
lr = 1e-3                   # both nets' Adam lr (betas stay 0.5, 0.999)
seeds = [0, 1, 2]           # optional per-dataset override
tricks = ["*"]              # optional per-dataset override
exclude = ["minibatch_*"]   # optional: patterns to leave out (say why in a comment)
width = 128                 # optional NetConfig overrides: z_dim, width, depth
```

Cells whose tricks do not apply to the data kind are kept: the runner stores them as
`not-applicable` with the reason, so tables show them.
"""
from __future__ import annotations

import sys
from importlib import resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.config import (CellConfig, ConfigError, DataConfig, NetConfig, OptimConfig,
                          TrainConfig, TrickSpec)
from bench.registry import create_trick, list_tricks

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

GRID_DIR = Path(str(resources.files("bench") / "grids"))  # presets: package data (the wheel ships them)
TOP_KEYS = {"description", "seeds", "design", "tricks", "data"}
DATA_KEYS = {"name", "resolution", "steps", "batch_size", "lr", "seeds", "tricks", "exclude",
             "z_dim", "width", "depth", "log_every", "checkpoint_every"}
DESIGNS = ("add-one", "baseline")


@dataclass(frozen=True)
class Grid:
    name: str
    description: str
    cells: tuple[CellConfig, ...]


def resolve_grid_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"grid file not found: {path}")
        return path
    candidate = GRID_DIR / f"{name_or_path}.toml"
    if not candidate.is_file():
        known = ", ".join(sorted(p.stem for p in GRID_DIR.glob("*.toml")))
        raise ConfigError(f"unknown grid '{name_or_path}' (presets: {known}; or give a .toml path)")
    return candidate


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} "
                          f"(allowed: {', '.join(sorted(allowed))})")


def _expand(patterns: list[str], where: str) -> list[str]:
    names: list[str] = []
    for pat in patterns:
        hits = list_tricks(pat)
        if not hits:
            raise ConfigError(f"{where}: trick pattern '{pat}' matches no registered trick")
        names.extend(h for h in hits if h not in names)
    return names


def full_spec(name: str, params: dict[str, Any] | None = None) -> TrickSpec:
    """A spec with every param filled in (defaults included) and the trick's version, so the
    cell id pins what runs."""
    trick = create_trick(name, **(params or {}))
    return TrickSpec.of(name, trick.params, trick.version)


def load_grid(name_or_path: str) -> Grid:
    path = resolve_grid_path(name_or_path)
    try:
        doc = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    _check_keys(doc, TOP_KEYS, str(path))
    design = doc.get("design", "add-one")
    if design not in DESIGNS:
        raise ConfigError(f"{path}: unknown design '{design}' (known: {', '.join(DESIGNS)})")
    if not doc.get("data"):
        raise ConfigError(f"{path}: no [[data]] table")
    cells: list[CellConfig] = []
    for i, table in enumerate(doc["data"]):
        where = f"{path} [[data]] #{i + 1}"
        _check_keys(table, DATA_KEYS, where)
        if "name" not in table:
            raise ConfigError(f"{where}: missing 'name'")
        seeds = table.get("seeds", doc.get("seeds", [0]))
        tricks = _expand(table.get("tricks", doc.get("tricks", ["*"])), where)
        excluded = set(_expand(table.get("exclude", []), where))
        tricks = [t for t in tricks if t not in excluded]
        variants: list[tuple[TrickSpec, ...]] = [()]
        if design == "add-one":
            variants += [(full_spec(t),) for t in tricks]
        opt = OptimConfig(lr=float(table["lr"])) if "lr" in table else OptimConfig()
        train = TrainConfig(**{k: table[k] for k in ("steps", "batch_size", "log_every",
                                                     "checkpoint_every") if k in table},
                            g_optim=opt, d_optim=opt)
        net = NetConfig(**{k: table[k] for k in ("z_dim", "width", "depth") if k in table})
        data = DataConfig(table["name"], table.get("resolution"))
        for variant in variants:
            for seed in seeds:
                cells.append(CellConfig(data=data, net=net, train=train, tricks=variant,
                                        seed=int(seed)))
    return Grid(path.stem, doc.get("description", ""), tuple(cells))
