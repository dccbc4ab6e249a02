"""A cell's parts, built once: tricks (checked against the cell's pinned versions), nets (the
baseline for the data kind, then every trick's `build`), optimizer settings and optimizers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from bench.core.config import CellConfig, OptimConfig
from bench.data import Dataset
from bench.nets import build_nets
from bench.trickapi.registry import build_tricks
from bench.trickapi.trick import BuildContext, Nets, TrickError
from bench.trickapi.trickset import TrickSet


def adam(params, spec: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2))


def make_tricks(cell: CellConfig, kind: str) -> TrickSet:
    """The cell's tricks; a disallowed set or a version other than the installed one raises."""
    tricks = TrickSet(build_tricks(((t.name, t.param_dict) for t in cell.tricks), kind,
                                    arch=cell.net.arch))
    for spec, trick in zip(cell.tricks, tricks):
        if spec.version != trick.version:
            raise TrickError(f"cell {cell.cell_id} was made with {spec.name} version "
                             f"{spec.version}; the installed trick is version {trick.version}")
    return tricks


def make_nets(cell: CellConfig, data: Dataset, tricks: TrickSet, device: torch.device,
              real_samples: Callable[[int], torch.Tensor]) -> Nets:
    nets = build_nets(cell.net, data.kind, data.shape)
    nets = Nets(nets.G.to(device), nets.D.to(device))
    ctx = BuildContext(kind=data.kind, shape=data.shape, net=cell.net, steps=cell.train.steps,
                       batch_size=cell.train.batch_size, seed=cell.seed, device=device,
                       real_samples=real_samples, num_classes=class_count(data))
    nets = tricks.build(nets, ctx)
    return Nets(nets.G.to(device), nets.D.to(device))


@dataclass
class Optimizers:
    g_spec: OptimConfig
    d_spec: OptimConfig
    g_opt: torch.optim.Optimizer
    d_opt: torch.optim.Optimizer


def make_optimizers(cell: CellConfig, nets: Nets, tricks: TrickSet) -> Optimizers:
    # a lazily regularised net gets StyleGAN2's lr/beta correction on top of the cell's setting
    g_spec = tricks.lazy_optimizer("G", tricks.optimizer("G", cell.train.g_optim))
    d_spec = tricks.lazy_optimizer("D", tricks.optimizer("D", cell.train.d_optim))
    return Optimizers(g_spec, d_spec, adam(nets.G.parameters(), g_spec),
                      adam(nets.D.parameters(), d_spec))


def class_count(data: Dataset) -> int | None:
    """Classes of a dataset with one label per sample; None otherwise (2-D, stacked sets)."""
    labels = data.train_labels
    return data.num_classes if labels is not None and labels.dim() == 1 and data.num_classes else None


def param_count(module: torch.nn.Module) -> int:
    """Trainable parameters (what capacity comparisons are about)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
