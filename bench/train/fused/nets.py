"""K networks of one shape as one: every parameter and buffer stacked along a leading model axis,
and a forward pass that interprets the per-cell module tree on inputs of shape [K, B, ...].

The per-cell modules (built by the ordinary `Trainer`, so initialisation and every trick's `build`
are exactly a single cell's) serve as the template: `StackedNet` reads their structure and runs
each known layer type on the stacked tensors (a linear layer is one `baddbmm` over the K models).
A layer type it does not know is refused with its name (`NotFusable`), and so is a module with
hooks or a parametrization (spectral norm): their forward is not the plain layer's.

The forms are registered in forms.py (`fused_layer(cls)` adds one) and live in torch_layers.py
(torch's layers) and suite_layers.py (the suite's shells and the tricks' layers).
"""
from __future__ import annotations

import torch
from torch import nn

from bench.train.fused import suite_layers, torch_layers  # noqa: F401 (their forms register)
from bench.train.fused.forms import FORMS, LayerFn, NotFusable, RunState, form_of, run


_builtins_loaded = False


def _load_builtins() -> None:
    """Register the fused forms of the suite's network shells (imported late: bench.nets
    imports this package's users); torch's and the tricks' layers register on import."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    FORMS.update(suite_layers.shells())
    _builtins_loaded = True


def _layer_fn(module: nn.Module) -> LayerFn | None:
    _load_builtins()
    return form_of(module)


def check_fusable(module: nn.Module, what: str) -> None:
    """NotFusable naming the first submodule the fused forward cannot run exactly."""
    from torch.nn.utils import parametrize

    for name, m in module.named_modules():
        where = f"{what}.{name}" if name else what
        if parametrize.is_parametrized(m):
            raise NotFusable(f"{where}: a parametrized layer (e.g. spectral norm) has no fused "
                             f"form")
        if _layer_fn(m) is None:
            raise NotFusable(f"{where}: layer {type(m).__name__} has no fused form")
        if m._forward_hooks or m._forward_pre_hooks:
            raise NotFusable(f"{where}: {type(m).__name__} has forward hooks")
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) and m.momentum is None:
            raise NotFusable(f"{where}: batch norm with a cumulative average")


def structure(module: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """What must be equal for modules to stack: every parameter and buffer's name, shape and
    dtype, and every submodule's type and settings (extra_repr)."""
    out = [(f"{n}:{type(m).__name__}({m.extra_repr()})", (), torch.float32)
           for n, m in module.named_modules()]
    out += [(n, tuple(t.shape), t.dtype) for n, t in module.named_parameters()]
    out += [(n, tuple(t.shape), t.dtype) for n, t in module.named_buffers()]
    return out


class StackedNet:
    """K modules of one structure as stacked tensors. `params` are leaf tensors [K, ...] that
    the engine's optimizer updates; `buffers` (batch-norm statistics) are updated in place by
    the forward pass in training mode."""

    def __init__(self, modules: list[nn.Module], what: str, device: torch.device):
        first = modules[0]
        check_fusable(first, what)
        shape = structure(first)
        for i, m in enumerate(modules[1:], 1):
            if structure(m) != shape:
                raise NotFusable(f"{what} of cell {i} differs in structure from cell 0's")
        self.template, self.what = first, what
        self.names = [n for n, p in first.named_parameters() if p.requires_grad]
        frozen = [n for n, p in first.named_parameters() if not p.requires_grad]
        if frozen:
            raise NotFusable(f"{what} has frozen parameters ({frozen[0]})")
        with torch.no_grad():
            self.params = {n: torch.stack([dict(m.named_parameters())[n].detach()
                                           for m in modules]).to(device).requires_grad_(True)
                           for n in self.names}
            self.buffers = {n: torch.stack([dict(m.named_buffers())[n].detach()
                                            for m in modules]).to(device).clone()
                            for n, _ in first.named_buffers()}
        self.training = True

    def __call__(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
                 buffers: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        st = RunState(self.params if params is None else params,
                      self.buffers if buffers is None else buffers, self.training)
        return run(self.template, "", x, st)

    def features(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
                 buffers: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        st = RunState(self.params if params is None else params,
                      self.buffers if buffers is None else buffers, self.training)
        return suite_layers.features(self.template, x, st)

    def parameters(self) -> list[torch.Tensor]:
        return [self.params[n] for n in self.names]

    @torch.no_grad()
    def write_back(self, k: int, module: nn.Module) -> None:
        """Copy model k's parameters and buffers into a per-cell module of the structure."""
        params, buffers = dict(module.named_parameters()), dict(module.named_buffers())
        for n in self.names:
            params[n].copy_(self.params[n][k])
        for n, b in self.buffers.items():
            buffers[n].copy_(b[k])
