"""A cell's *setup*: its config without the tricks, the seed and bookkeeping, flattened
(`{"net.width": 64, "train.g_optim.beta1": 0.5, ...}`). A Δ compares a variant with the baseline
of the same setup; rows of one table whose setups differ are told apart by `suffixes`."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any, Iterable, Mapping

from bench.core.config import CellConfig, ConfigError, DataConfig

# Fields that do not change what a cell learns: how often it checkpoints (resume is exact) and
# how often the loss log averages. log_every is setup under stop_on = "hard", where hard flags are
# checked at each log point and so decide when a run ends.
BOOKKEEPING = ("train.checkpoint_every", "train.log_every")
# where a swept / tuned value lives in the setup (its row label already shows it)
SWEPT = {"steps": ("train.steps",), "batch_size": ("train.batch_size",),
         "lr": ("train.g_optim.lr", "train.d_optim.lr")}
LR_KEYS = SWEPT["lr"]


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _flat(config: Mapping[str, Any]) -> dict[str, Any]:
    """The whole config but tricks and seed, flattened, defaults filled in (a field added later
    and pruned at its default compares equal to it spelled out)."""
    try:
        full = dataclasses.asdict(CellConfig.from_dict(config))
    except ConfigError:  # a config this harness cannot read (e.g. newer fields): as stored
        full = dict(config)
    for k in ("tricks", "seed", "harness_version"):
        full.pop(k, None)
    flat = _flatten(full)
    # a harness version bump marks records as incomparable: part of the setup
    flat["harness_version"] = config.get("harness_version")
    return dict(sorted(flat.items()))


def setup_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened setup of a stored config: `_flat` without the bookkeeping."""
    flat = _flat(config)
    drop = {k for k in BOOKKEEPING if k != "train.log_every" or flat.get("train.stop_on") != "hard"}
    return {k: v for k, v in flat.items() if k not in drop}


def setup_id(setup: Mapping[str, Any], without: Iterable[str] = ()) -> str:
    """A short stable key of a setup (optionally ignoring some fields, e.g. the LRs)."""
    skip = set(without)
    text = json.dumps({k: v for k, v in setup.items() if k not in skip}, sort_keys=True,
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _default_setup(setup: Mapping[str, Any]) -> dict[str, Any]:
    """The harness defaults for the same data (what a row need not name)."""
    try:
        data = DataConfig(setup.get("data.name"), setup.get("data.resolution"))
    except ConfigError:
        return {}
    return _flat(CellConfig(data=data).to_dict())


def _name(key: str) -> str:
    """'net.width' -> 'width', 'train.g_optim.beta1' -> 'g_beta1'."""
    parts = key.split(".")
    if len(parts) >= 3 and parts[-2] in ("g_optim", "d_optim"):
        return f"{parts[-2][0]}_{parts[-1]}"
    return parts[-1]


def _text(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def suffixes(setups: list[Mapping[str, Any]], shown: list[Iterable[str]]) -> list[str]:
    """For rows of one table: ', '-joined 'name=value' of the setup fields that differ between
    the rows, where a row's value is not the harness default and its label does not show it
    already (`shown`: the sweep / tune keys in each row's label). '' where nothing is to say."""
    keys = sorted({k for s in setups for k in s})
    varying = [k for k in keys if len({json.dumps(s.get(k), default=str) for s in setups}) > 1]
    out = []
    for i, s in enumerate(setups):
        covered = {k for name in shown[i] for k in SWEPT.get(name, ())}
        default = _default_setup(s)
        items = {_name(k): s[k] for k in varying  # absent: bookkeeping for this row
                 if k in s and k not in covered and (k not in default or s[k] != default[k])}
        for x in ("lr", "beta1", "beta2"):  # both nets alike: one name
            g, d = f"g_{x}", f"d_{x}"
            if g in items and d in items and items[g] == items[d]:
                items = {(x if k == g else k): v for k, v in items.items() if k != d}
        out.append(", ".join(f"{k}={_text(v)}" for k, v in items.items()))
    return out
