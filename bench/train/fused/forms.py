"""The registry of fused forms: for each layer type, the function that runs K stacked models of
it at once, `fn(module, prefix, x, state) -> y`, where `state.p(prefix + "weight")` is the
stacked tensor [K, *shape] and `x` is [K, B, ...]. torch_layers.py and suite_layers.py fill it;
nets.py (StackedNet) reads it."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class NotFusable(ValueError):
    """The cells cannot be trained as one fused step; the message says why (one line)."""


LayerFn = Callable[[nn.Module, str, torch.Tensor, "RunState"], torch.Tensor]
FORMS: dict[type, LayerFn] = {}
# Layers of plug-in tricks, by qualified class name: `bench/train` may not import `tricks`
# (tests/test_architecture.py).
PLUGIN_FORMS: dict[str, LayerFn] = {}


def fused_layer(cls: type) -> Callable[[LayerFn], LayerFn]:
    """Register the fused forward of a layer type (exact type match: a subclass may change
    what forward computes)."""
    def register(fn: LayerFn) -> LayerFn:
        FORMS[cls] = fn
        return fn
    return register


class RunState:
    """What one fused forward reads: the stacked parameters (possibly replaced, e.g. by an
    unrolled D's), the stacked buffers, and whether the nets are in training mode."""

    def __init__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                 training: bool):
        self.params, self.buffers, self.training = params, buffers, training

    def p(self, name: str) -> torch.Tensor:
        return self.params[name]

    def b(self, name: str) -> torch.Tensor:
        return self.buffers[name]


def form_of(module: nn.Module) -> LayerFn | None:
    t = type(module)
    fn = FORMS.get(t)
    if fn is None:
        fn = PLUGIN_FORMS.get(f"{t.__module__}.{t.__qualname__}")
    return fn


def run(module: nn.Module, prefix: str, x: torch.Tensor, st: RunState) -> torch.Tensor:
    fn = form_of(module)
    if fn is None:
        raise NotFusable(f"layer {type(module).__name__} has no fused form")
    return fn(module, prefix, x, st)
