"""TrickSet: the tricks of one cell, in canonical order, with the hook rules of hooks.py
applied. The trainer calls `tricks.d_input(x, ...)` and never loops over tricks itself.

Only tricks that override a hook are called for it (cheaper, and the identity defaults cannot
hide a typo). Every result is checked against the hook's contract; a bad one raises TrickError
naming the trick and the hook, so a plug-in author sees their mistake in one line instead of a
traceback from inside the loop.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Callable, Iterator

import torch
from torch import nn

from bench.core.config import OptimConfig
from bench.trickapi.hooks import HOOKS
from bench.trickapi.losses import G_LOSSES
from bench.trickapi.trick import BuildContext, Nets, StepContext, Trick, TrickError, overrides


def _fail(trick: Trick, hook: str, problem: str) -> TrickError:
    return TrickError(f"trick '{trick.name}' hook '{hook}': {problem}")


def _describe(value: Any) -> str:
    if torch.is_tensor(value):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:80]


def _scalar(trick: Trick, hook: str, value: Any, what: str) -> torch.Tensor:
    if not torch.is_tensor(value) or value.numel() != 1:
        raise _fail(trick, hook, f"{what} must be a scalar tensor, got {_describe(value)}")
    return value.reshape(())


def _merge_terms(trick: Trick, hook: str, out: Any, phase: str,
                 terms: dict[str, torch.Tensor]) -> None:
    """Add a penalty hook's `{name: scalar}` to `terms` as `<phase>_<name>` (the merge rule)."""
    if not isinstance(out, dict):
        raise _fail(trick, hook, f"must return a dict of named terms, got {_describe(out)}")
    for name, value in out.items():
        key = f"{phase}_{name}"
        if key in terms:
            raise _fail(trick, hook, f"loss term '{key}' is returned twice")
        terms[key] = _scalar(trick, hook, value, f"term '{name}'")


def to_device(obj: Any, device: torch.device) -> Any:
    """Tensors inside nested dicts/lists/tuples moved to `device` (checkpoints load on the CPU)."""
    if torch.is_tensor(obj):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


class TrickSet(Sequence):
    def __init__(self, tricks: Sequence[Trick]):
        self._tricks: tuple[Trick, ...] = tuple(sorted(tricks, key=lambda t: t.name))
        self._by_hook: dict[str, tuple[Trick, ...]] = {
            h: tuple(t for t in self._tricks if overrides(t, h)) for h in HOOKS}

    # -- a read-only sequence of tricks -----------------------------------------------------------
    def __getitem__(self, i):  # type: ignore[override]
        return self._tricks[i]

    def __len__(self) -> int:
        return len(self._tricks)

    def __iter__(self) -> Iterator[Trick]:
        return iter(self._tricks)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self._tricks)

    def using(self, hook: str) -> tuple[Trick, ...]:
        """The tricks that override `hook`."""
        return self._by_hook[hook]

    # -- once, before training ------------------------------------------------------------------------
    def build(self, nets: Nets, ctx: BuildContext) -> Nets:
        for t in sorted(self.using("build"), key=lambda t: (t.build_order, t.name)):
            nets = t.build(nets, ctx)
            if not (isinstance(nets, Nets) and isinstance(nets.G, nn.Module)
                    and isinstance(nets.D, nn.Module)):
                raise _fail(t, "build", f"must return Nets(G, D) of modules, got {_describe(nets)}")
        return nets

    def d_steps(self) -> int:
        for t in self.using("d_steps"):
            n = t.d_steps()
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise _fail(t, "d_steps", f"must return an integer >= 1, got {_describe(n)}")
            return n
        return 1

    def batch_multiple(self) -> int:
        for t in self.using("batch_multiple"):
            n = t.batch_multiple()
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise _fail(t, "batch_multiple",
                            f"must return an integer >= 1, got {_describe(n)}")
            return n
        return 1

    def optimizer(self, net: str, spec: OptimConfig) -> OptimConfig:
        for t in self.using("optimizer"):
            out = t.optimizer(net, spec)
            if not isinstance(out, OptimConfig):
                raise _fail(t, "optimizer", f"must return an OptimConfig, got {_describe(out)}")
            if not (math.isfinite(out.lr) and out.lr > 0 and 0 <= out.beta1 < 1
                    and 0 <= out.beta2 < 1):
                raise _fail(t, "optimizer", f"returned an invalid optimizer {out}")
            return out
        return spec

    def lazy_interval(self, net: str) -> int:
        """1, or the interval every trick that regularises `net` lazily agrees on."""
        found: tuple[Trick, int] | None = None
        for t in self.using("lazy_interval"):
            n = t.lazy_interval(net)
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise _fail(t, "lazy_interval", f"must return an integer >= 1, got {_describe(n)}")
            if n == 1:
                continue
            if found is not None and found[1] != n:
                raise TrickError(f"tricks '{found[0].name}' and '{t.name}' regularise {net} "
                                 f"lazily every {found[1]} and {n} steps; give them one interval")
            found = (t, n)
        return found[1] if found else 1

    def lazy_optimizer(self, net: str, spec: OptimConfig) -> OptimConfig:
        """StyleGAN2's correction for a lazily regularised net: with c = N/(N+1), lr*c and
        beta**c, so the main and regulariser updates together move Adam as one update would."""
        n = self.lazy_interval(net)
        if n == 1:
            return spec
        c = n / (n + 1)
        return OptimConfig(lr=spec.lr * c, beta1=spec.beta1 ** c, beta2=spec.beta2 ** c)

    # -- every step -------------------------------------------------------------------------------------
    def on_step(self, step: int) -> None:
        for t in self.using("on_step"):
            t.on_step(step)

    def lr_scale(self, step: int, net: str) -> float:
        scale = 1.0
        for t in self.using("lr_scale"):
            s = t.lr_scale(step, net)
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0:
                raise _fail(t, "lr_scale", f"must return a finite number > 0, got {_describe(s)}")
            scale *= s
        return scale

    @property
    def wants_labels(self) -> bool:
        """A trick conditions on class labels (the loop then carries them)."""
        return bool(self.using("condition"))

    def condition(self, y: torch.Tensor) -> None:
        for t in self.using("condition"):
            t.condition(y)

    def d_input(self, x: torch.Tensor, is_real: bool, step: int) -> torch.Tensor:
        for t in self.using("d_input"):
            out = t.d_input(x, is_real, step)
            if not torch.is_tensor(out) or out.shape != x.shape:
                raise _fail(t, "d_input", f"must return a batch of shape {tuple(x.shape)}, "
                                          f"got {_describe(out)}")
            x = out
        return x

    def targets(self, real_t: torch.Tensor, fake_t: torch.Tensor, step: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        for t in self.using("targets"):
            out = t.targets(real_t, fake_t, step)
            if not (isinstance(out, tuple) and len(out) == 2 and all(map(torch.is_tensor, out))
                    and out[0].shape == real_t.shape and out[1].shape == fake_t.shape):
                raise _fail(t, "targets", "must return (real_t, fake_t) with the shapes it was "
                                          f"given, got {_describe(out)}")
            real_t, fake_t = out
        return real_t, fake_t

    def adversarial_loss_fn(self, g_loss: str) -> Callable[[StepContext], torch.Tensor]:
        """The loss of the trick that claims the slot, checked; otherwise the baseline loss
        `g_loss` names (bench/trickapi/losses.py)."""
        for t in self.using("adversarial_loss"):
            def checked(ctx: StepContext, _t: Trick = t) -> torch.Tensor:
                return _scalar(_t, "adversarial_loss", _t.adversarial_loss(ctx),
                               f"the {ctx.phase.upper()} loss")
            return checked
        return G_LOSSES[g_loss]

    def adversarial_weight(self, phase: str) -> float:
        weight = 1.0
        for t in self.using("adversarial_weight"):
            w = t.adversarial_weight(phase)
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise _fail(t, "adversarial_weight", f"must return a finite number >= 0, "
                                                     f"got {_describe(w)}")
            weight *= w
        return weight

    def penalties(self, ctx: StepContext, terms: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Add every trick's penalty terms to `terms` as `<phase>_<name>`."""
        for t in self.using("penalty"):
            _merge_terms(t, "penalty", t.penalty(ctx), ctx.phase, terms)
        return terms

    def lazy_penalties(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Every trick's lazy terms for ctx.phase as `<phase>_<name>` (unscaled)."""
        terms: dict[str, torch.Tensor] = {}
        for t in self.using("lazy_penalty"):
            if t.lazy_interval(ctx.phase.upper()) != 1:
                _merge_terms(t, "lazy_penalty", t.lazy_penalty(ctx), ctx.phase, terms)
        return terms

    def after_g_step(self, nets: Nets, step: int) -> None:
        for t in self.using("after_g_step"):
            t.after_g_step(nets, step)

    def sampler(self, G: nn.Module) -> nn.Module:
        """What is sampled and scored in G's place: the slot holder's module, or G."""
        return self._first_module("sampler", G, G)

    def g_critic(self, ctx: StepContext) -> Callable[[torch.Tensor], torch.Tensor] | None:
        return self._first_module("g_critic", None, ctx)

    def _first_module(self, hook: str, default: Any, *args: Any) -> Any:
        """A slot hook that returns a module: the slot holder's result, checked, or `default`."""
        for t in self.using(hook):
            out = getattr(t, hook)(*args)
            if not callable(out):
                raise _fail(t, hook, f"must return a module, got {_describe(out)}")
            return out
        return default

    # -- checkpoints ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, dict[str, Any]]:
        out = {}
        for t in self._tricks:
            state = t.state_dict()
            if not isinstance(state, dict):
                raise _fail(t, "state_dict", f"must return a dict, got {_describe(state)}")
            out[t.name] = state
        return out

    def load_state_dict(self, state: dict[str, dict[str, Any]], device: torch.device) -> None:
        for t in self._tricks:
            t.load_state_dict(to_device(state.get(t.name, {}), device))
