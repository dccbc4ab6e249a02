"""Tiny cells and trainers for mechanism tests: small nets, few steps, no store.

Trainers run on the device named by $GANBENCH_TEST_DEVICE (default cpu), so the same trainer,
trick, pair and resume tests run on a GPU with `GANBENCH_TEST_DEVICE=cuda pytest`; a test that
would need an absent CUDA device is skipped with the reason.
"""
from __future__ import annotations

import os

import pytest
import torch

from bench.core.config import CellConfig, DataConfig, NetConfig, OptimConfig, TrainConfig
from bench.schedule.grid import full_spec
from bench.train import Trainer


def tiny_cell(dataset: str = "ring8", tricks=(), *, steps: int = 5, batch_size: int = 16,
              seed: int = 0, width: int | None = None, z_dim: int = 8, lr: float = 2e-4,
              checkpoint_every: int = 0, log_every: int = 1) -> CellConfig:
    """`tricks` is a sequence of names or (name, params) pairs."""
    # pinned like the CLI and grids pin them: every param and the trick's current version
    specs = tuple(full_spec(t) if isinstance(t, str) else full_spec(*t) for t in tricks)
    if width is None:
        width = 16 if dataset in ("ring8", "grid25") else 8
    opt = OptimConfig(lr=lr)
    return CellConfig(
        data=DataConfig(dataset), net=NetConfig(z_dim=z_dim, width=width, depth=2),
        train=TrainConfig(steps=steps, batch_size=batch_size, g_optim=opt, d_optim=opt,
                          log_every=log_every, checkpoint_every=checkpoint_every),
        tricks=specs, seed=seed)


TEST_DEVICE_ENV = "GANBENCH_TEST_DEVICE"


def device_under_test() -> torch.device:
    """The device tests train on: $GANBENCH_TEST_DEVICE (cpu, cuda, cuda:N), default cpu.
    Asking for CUDA on a machine without it skips the calling test, saying why."""
    from bench.core.config import ConfigError
    from bench.train.runtime import pick_device

    name = os.environ.get(TEST_DEVICE_ENV, "cpu")
    try:
        return pick_device(name)
    except ConfigError as exc:
        pytest.skip(f"{TEST_DEVICE_ENV}={name}: {exc}")


def tiny_trainer(dataset: str = "ring8", tricks=(), **kw) -> Trainer:
    workdir = kw.pop("workdir", None)
    device = kw.pop("device", None) or device_under_test()
    return Trainer(tiny_cell(dataset, tricks, **kw), workdir=workdir, device=device,
                   progress=False)


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Tensor entries of a state dict (module extra state, e.g. a growth stage, is left out)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()
            if isinstance(v, torch.Tensor)}


def scored_in_two_steps(cell: CellConfig, store_dir):
    """The record of `cell` trained for 2 steps (every step logged, no checkpoints) and scored
    through the runner into a store at `store_dir`: a preset's variant builds, trains and
    scores on its own settings."""
    import dataclasses

    from bench.schedule.runner import run_cell
    from bench.store import Store

    short = dataclasses.replace(cell, train=dataclasses.replace(
        cell.train, steps=2, log_every=1, checkpoint_every=0))
    with Store(store_dir) as store:
        return run_cell(short, store, progress=False, curve_every=0)
