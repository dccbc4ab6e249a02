"""The trick plug-in interface: a small, fixed set of hooks that *return* values.

A trick subclasses `Trick`, declares typed `Params` (a frozen dataclass), the exclusive slots it
claims, its conflicts and the data kinds it applies to, and overrides only the hooks it needs.
The trainer calls every hook of every trick in the cell; a hook it does not override is the
identity. A public method whose name is close to a hook's but is not one (`d_inputs`) is an
error at registration: a typo guard.

Hook order: `build` runs in (`build_order`, name) order; every other chained hook runs in name
order, the cell's canonical order, so a cell always means the same computation.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping

import torch
from torch import nn

from bench.trickapi.hooks import HOOKS, SLOT_HOOKS  # the hook rules live in one table

if TYPE_CHECKING:
    from bench.core.config import NetConfig, OptimConfig

# Exclusive slots: at most one trick in a cell may claim each.
SLOTS = {
    "adversarial_loss": "defines the D and G adversarial losses",
    "g_critic": "chooses which discriminator G's update is scored against",
    "d_steps": "sets the number of D updates per G update",
    "optimizer": "sets the optimizers' learning rates and betas",
    "lr_schedule": "scales the learning rate over the run",
    "g_architecture": "replaces the generator's architecture",
    "d_architecture": "replaces the discriminator's architecture",
    "g_normalization": "adds normalization layers to G",
    "batch_multiple": "draws a multiple of the batch per update (packing's m samples per D input)",
    "sampler": "chooses which generator is sampled and scored (e.g. an average of G's weights)",
}

# What a trick may need from the data beyond its kind (`Trick.needs`), with the words a
# not-applicable reason uses; datasets state theirs in `bench.data.dataset_traits`.
TRAITS = {"class_labels": "one class label per sample"}

# build_order bands: replace whole nets, then insert layers, then reparametrize weights
# (so spectral norm also covers layers other tricks inserted), then wrap finished nets.
REPLACE, INSERT, REPARAMETRIZE, WRAP = 0, 10, 20, 30


class TrickError(ValueError):
    """Bad trick name, params or combination; the message is one line meant for the user."""


@dataclass
class Nets:
    G: nn.Module
    D: nn.Module


@dataclass(frozen=True)
class BuildContext:
    kind: str  # "2d" | "image"
    shape: tuple[int, ...]
    net: "NetConfig"
    steps: int
    batch_size: int
    seed: int
    device: torch.device
    # Deterministic real samples that do not touch the training data stream (e.g. references).
    real_samples: Callable[[int], torch.Tensor]
    # classes of a labelled dataset (one label per sample); None when the data has none
    num_classes: int | None = None


class StepContext:
    """What one D or G update sees. In the G phase `real_in` and `d_real` are computed on first
    use, so losses that do not need D(real) for G (the non-saturating baseline) do not pay for it.
    `critic` is the D this update is scored against; `d_loss_fn(D)` recomputes the full D loss
    of the current batch for another D (G phase; used by unrolling)."""

    def __init__(self, *, phase: str, step: int, steps: int, nets: Nets, critic: nn.Module,
                 real: torch.Tensor, z: torch.Tensor, fake: torch.Tensor,
                 real_in: torch.Tensor | Callable[[], torch.Tensor],
                 fake_in: torch.Tensor | None = None, d_fake: torch.Tensor | None = None,
                 d_real: torch.Tensor | None = None,
                 real_t: torch.Tensor | None = None, fake_t: torch.Tensor | None = None,
                 d_loss_fn: Callable[[nn.Module], torch.Tensor] | None = None,
                 d_optimizer: torch.optim.Optimizer | None = None):
        self.phase, self.step, self.steps, self.nets, self.critic = phase, step, steps, nets, critic
        self.real, self.z, self.fake, self.fake_in = real, z, fake, fake_in
        self._real_in, self._d_real, self.d_fake = real_in, d_real, d_fake
        self.real_t, self.fake_t = real_t, fake_t
        self.d_loss_fn, self.d_optimizer = d_loss_fn, d_optimizer

    @property
    def real_in(self) -> torch.Tensor:
        if callable(self._real_in):
            self._real_in = self._real_in()
        return self._real_in

    @property
    def d_real(self) -> torch.Tensor:
        if self._d_real is None:
            self._d_real = self.critic(self.real_in)
        return self._d_real


@dataclass(frozen=True)
class NoParams:
    pass




class Trick:
    # -- declarations (class attributes) --------------------------------------------------------
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line: what it changes
    source: ClassVar[str] = ""  # citation
    Params: ClassVar[type] = NoParams
    slots: ClassVar[tuple[str, ...]] = ()
    excludes: ClassVar[Mapping[str, str]] = {}  # trick name -> one-line reason
    requires: ClassVar[Mapping[str, str]] = {}  # trick name -> one-line reason
    applies_to: ClassVar[frozenset[str]] = frozenset({"2d", "image"})
    # what the data must offer beyond its kind (known: "class_labels", one label per sample)
    needs: ClassVar[frozenset[str]] = frozenset()
    build_order: ClassVar[int] = INSERT
    # Bump when a change alters what the trick computes: cells pinned to another version get new
    # ids (old records stay as history) and a stored cell of another version is refused.
    version: ClassVar[int] = 1

    def __init__(self, params: Any = None):
        self.p = params if params is not None else self.Params()

    def claimed_slots(self) -> tuple[str, ...]:
        """Slots this instance declares; override when they depend on params. Slots implied by
        the hooks it overrides are added to these (see `slots_of`)."""
        return self.slots

    @property
    def params(self) -> dict[str, Any]:
        """Param values for the cell config; params declared with OPTIONAL metadata are left out
        at their default, so adding one never changes existing cell ids."""
        from bench.core.config import prune_optional

        return prune_optional(self.p, dataclasses.asdict(self.p))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def step_cost(self) -> float:
        """Network updates per step relative to the baseline's, for grids with `budget =
        "evals"` (they train steps / cost steps, so every variant gets the same compute). The
        baseline's step is two units, one D update and one G update; a double backward (a
        gradient penalty) counts one more unit, k extra D updates k more. It counts passes, not
        their size: a bigger net (StyleGAN, self-attention) still costs 1 (the report's compute
        column shows measured seconds). Override when the trick adds passes."""
        return 1.0

    # -- hooks: every default is the identity -----------------------------------------------
    def build(self, nets: Nets, ctx: BuildContext) -> Nets:
        """Return the (possibly modified or replaced) networks. Runs once, before training."""
        return nets

    def on_step(self, step: int) -> None:
        """Called before each G step; for state that is a function of the step (fade-in, anneal)."""

    def condition(self, y: torch.Tensor) -> None:
        """Labelled data: the class labels of the batch G and D are about to see."""

    def d_input(self, x: torch.Tensor, is_real: bool, step: int) -> torch.Tensor:
        """Transform a batch on its way into D (both phases)."""
        return x

    def targets(self, real_t: torch.Tensor, fake_t: torch.Tensor, step: int
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Transform D's targets for real and fake samples (D phase)."""
        return real_t, fake_t

    def adversarial_loss(self, ctx: StepContext) -> torch.Tensor:
        """Slot `adversarial_loss`: the loss of ctx.phase ('d' or 'g')."""
        raise NotImplementedError

    def adversarial_weight(self, phase: str) -> float:
        """Multiplies the adversarial loss of a phase (e.g. 0 when a penalty replaces it)."""
        return 1.0

    def penalty(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """Extra loss terms for ctx.phase, by name; they are added to that phase's loss."""
        return {}

    def g_critic(self, ctx: StepContext) -> nn.Module:
        """Slot `g_critic`: the discriminator G's loss is computed against."""
        return ctx.nets.D

    def d_steps(self) -> int:
        """Slot `d_steps`: D updates per G update."""
        return 1

    def batch_multiple(self) -> int:
        """Slot `batch_multiple`: each D and G update draws this many times the cell's batch of
        real samples and latents (packing: D sees them m at a time, as batch_size inputs)."""
        return 1

    def optimizer(self, net: str, spec: "OptimConfig") -> "OptimConfig":
        """Slot `optimizer`: the optimizer settings of net 'G' or 'D'."""
        return spec

    def lr_scale(self, step: int, net: str) -> float:
        """Multiplier on the base learning rate at `step`: a pure function of the step."""
        return 1.0

    def lazy_interval(self, net: str) -> int:
        """N > 1: this trick regularises net 'G' or 'D' lazily, every N steps, through
        `lazy_penalty` (a separate update; the loop corrects that net's Adam lr and betas)."""
        return 1

    def lazy_penalty(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The lazy regulariser's terms for ctx.phase, unscaled (the loop multiplies by N)."""
        return {}

    def after_g_step(self, nets: Nets, step: int) -> None:
        """Called after each G update (e.g. to update an average of G's weights)."""

    def sampler(self, G: nn.Module) -> nn.Module:
        """Slot `sampler`: the module sampled and scored in G's place."""
        return G

    def state_dict(self) -> dict[str, Any]:
        """Trick state that is not a function of the step (saved in checkpoints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def overrides(trick: Trick | type[Trick], hook: str) -> bool:
    """True when the trick's class defines `hook` itself (not the identity default)."""
    cls = trick if isinstance(trick, type) else type(trick)
    return getattr(cls, hook) is not getattr(Trick, hook)


def implied_slots(trick: Trick | type[Trick]) -> tuple[str, ...]:
    """Slots claimed by overriding a slot hook (e.g. `adversarial_loss`): a trick cannot replace
    the loss without conflicting with every other trick that does."""
    return tuple(slot for slot, hook in SLOT_HOOKS.items() if overrides(trick, hook))


def slots_of(trick: Trick) -> tuple[str, ...]:
    """Every slot an instance claims: declared (for its params) plus implied by its hooks."""
    declared = tuple(trick.claimed_slots())
    return declared + tuple(s for s in implied_slots(trick) if s not in declared)


__all__ = [
    "Trick", "TrickError", "Nets", "BuildContext", "StepContext", "NoParams", "HOOKS", "SLOTS",
    "REPLACE", "INSERT", "REPARAMETRIZE", "WRAP", "overrides", "implied_slots", "slots_of",
]
