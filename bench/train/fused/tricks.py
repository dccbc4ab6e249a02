"""Which tricks the fused step reproduces, and their fused forms.

A trick is supported when every hook it overrides is one of:

- pure hooks the engine calls per cell through the cell's own TrickSet: `build` (the nets are
  built by the cell's Trainer; the resulting layers must have a fused form, see nets.py),
  `optimizer`, `lr_scale`, `d_steps` (equal across the group), `lazy_interval` (must be 1);
- a hook with a fused form here, which reads each cell's own trick object for its params (so
  cells of one group may differ in them) and draws its random numbers from each cell's stream
  in the single-cell order.

Everything else (on_step state, condition, after_g_step, sampler, adversarial_weight, lazy
regularisers, random targets such as label flips, and any trick not listed) is refused, with the
reason; the scheduler then trains those cells one per process.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .adam import per_model

# hooks the engine runs per cell through the cell's TrickSet (no tensors, no random numbers)
PURE_HOOKS = frozenset({"build", "optimizer", "lr_scale", "d_steps", "lazy_interval",
                        "batch_multiple"})
# trick name -> hooks with a fused form below (engine.py dispatches to them by name). Unlike the
# Trainer, this package names tricks: a fused form restates what a trick computes, so each is
# pinned to the trick version it was written (and tested) for; another version is refused.
FUSED_HOOKS: dict[str, frozenset[str]] = {
    "label_smoothing": frozenset({"targets"}),
    "one_sided_label_smoothing": frozenset({"targets"}),
    "instance_noise": frozenset({"d_input"}),
    "wgan_gp": frozenset({"adversarial_loss", "penalty"}),
    "gradient_penalty": frozenset({"penalty", "lazy_penalty"}),
    # g_critic: the unrolled D; adversarial_weight and penalty: G's objective "value" (Metz et
    # al.'s game value at the unrolled D replaces G's loss; the engine's `_terms`)
    "unrolled": frozenset({"g_critic", "adversarial_weight", "penalty"}),
    "dual_discriminator": frozenset({"adversarial_loss"}),
}
# tricks whose fused form (above, or a layer's in nets.py) depends on what they compute
FUSED_VERSIONS: dict[str, int] = {
    "label_smoothing": 1, "one_sided_label_smoothing": 1, "instance_noise": 1, "wgan_gp": 1,
    "gradient_penalty": 2, "unrolled": 2, "minibatch_stddev": 1, "packing": 1,
    "dual_discriminator": 1, "minibatch_discrimination": 3,
}
# hooks a trick overrides but that, at the given params, do what the default does (so the engine
# may skip them); none at present (unrolled's G objective has a fused form)
NEUTRAL_HOOKS: dict = {}
# trick params the engine reads per cell (fused forms above, lr schedules and optimizer settings
# through each cell's TrickSet), so the cells of one group may differ in them ("*": every param).
# Any other param (packing's m, unrolled's k, wgan_gp's n_critic, a layer's settings, and every
# param of a trick not listed) shapes the nets or the loop and must be equal within a group.
PER_CELL_PARAMS: dict[str, frozenset[str]] = {
    "label_smoothing": frozenset({"*"}), "one_sided_label_smoothing": frozenset({"*"}),
    "instance_noise": frozenset({"*"}), "ttur": frozenset({"*"}), "lr_warmup": frozenset({"*"}),
    "lr_step_decay": frozenset({"*"}), "lr_cyclic": frozenset({"*"}),
    "wgan_gp": frozenset({"gp_weight", "lr", "beta1", "beta2"}),
    "gradient_penalty": frozenset({"weight", "perturb"}),
    "dual_discriminator": frozenset({"alpha", "beta"}),
}


def shared_params(name: str, params: dict) -> dict:
    """The params of trick `name` that must be equal across a fused group (PER_CELL_PARAMS)."""
    free = PER_CELL_PARAMS.get(name, frozenset())
    if "*" in free:
        return {}
    return {k: v for k, v in params.items() if k not in free}


# targets hooks that are deterministic and independent of the step: computed once per cell
STEP_INDEPENDENT_TARGETS = frozenset({"label_smoothing", "one_sided_label_smoothing"})


def refusal(trick, kind: str = "2d") -> str | None:
    """Why the fused engine cannot train a cell with this trick (None: it can)."""
    from bench.trickapi.hooks import HOOKS
    from bench.trickapi.trick import overrides

    fused = FUSED_HOOKS.get(trick.name, frozenset())
    pinned = FUSED_VERSIONS.get(trick.name)
    if pinned is not None and trick.version != pinned:
        return (f"{trick.name}: its fused form is of version {pinned}, the installed trick is "
                f"version {trick.version}")
    neutral = NEUTRAL_HOOKS.get(trick.name, lambda t: frozenset())(trick)
    for hook in HOOKS:
        if (overrides(trick, hook) and hook not in PURE_HOOKS and hook not in fused
                and hook not in neutral):
            return f"{trick.name}: hook '{hook}' has no fused form"
    for hook in ("state_dict", "load_state_dict"):
        if overrides(trick, hook):
            return f"{trick.name}: keeps state the fused engine does not carry"
    if trick.name == "gradient_penalty" and trick.p.interval != 1:
        return "gradient_penalty: lazy regularisation (interval > 1) has no fused form"
    return None


def supported_tricks() -> list[str]:
    """Tricks with a fused form of a hook or layer (tricks that only use pure hooks, such as
    TTUR or the lr schedules, and layer tricks such as batch norm fuse too)."""
    return sorted(set(FUSED_HOOKS) | set(FUSED_VERSIONS))


# -- losses --------------------------------------------------------------------------------------
def _bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-model mean BCE of [K, B(, k)] logits: F.binary_cross_entropy_with_logits per model."""
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).mean(1)


def _mean(x: torch.Tensor) -> torch.Tensor:
    return x.flatten(1).mean(1)


def game_value(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """tricks/unrolled.py's G objective "value" per model, [K]: E log D(x) + E log(1 - D(G(z)))
    at the unrolled D, the negative of D's BCE loss with plain 0/1 labels."""
    return -(_bce(d_real, torch.ones_like(d_real)) + _bce(d_fake, torch.zeros_like(d_fake)))


_LOG_SP_SWITCH = -15.0  # tricks/dual_discriminator.py's


def _log_softplus(t: torch.Tensor) -> torch.Tensor:
    """tricks/dual_discriminator.py's log(softplus(t)), finite with a finite gradient."""
    low = t < _LOG_SP_SWITCH
    safe = torch.where(low, torch.zeros_like(t), t)
    return torch.where(low, t, torch.log(F.softplus(safe)))


def d2gan_loss(tricks: list, phase: str, c) -> torch.Tensor:
    """tricks/dual_discriminator.py's D2GAN losses per model, [K], on outputs [K, B, 2], with
    each cell's alpha and beta."""
    a = per_model([t.p.alpha for t in tricks], c.d_fake[:, 0, 0])
    b = per_model([t.p.beta for t in tricks], c.d_fake[:, 0, 0])
    d1_fake, d2_fake = c.d_fake[..., 0], c.d_fake[..., 1]
    if phase == "d":
        d1_real, d2_real = c.d_real[..., 0], c.d_real[..., 1]
        return (-a * _mean(_log_softplus(d1_real)) + _mean(F.softplus(d1_fake))
                + _mean(F.softplus(d2_real)) - b * _mean(_log_softplus(d2_fake)))
    return -_mean(F.softplus(d1_fake)) + b * _mean(_log_softplus(d2_fake))


def adversarial_loss(name: str, g_loss: str, phase: str, c, tricks: list | None = None
                     ) -> torch.Tensor:
    """The adversarial loss per model, [K]: bench/losses.py, or the slot holder's (`tricks`:
    the holder's trick object of each cell)."""
    if name == "dual_discriminator":
        return d2gan_loss(tricks, phase, c)
    if name == "wgan_gp":
        if phase == "d":
            return _mean(c.d_fake) - _mean(c.d_real)
        return -_mean(c.d_fake)
    if phase == "d":
        return _bce(c.d_real, c.real_t) + _bce(c.d_fake, c.fake_t)
    if g_loss == "minimax":
        return -_bce(c.d_fake, torch.zeros_like(c.d_fake))
    return _bce(c.d_fake, torch.ones_like(c.d_fake))


# -- D inputs ------------------------------------------------------------------------------------
def instance_noise(tricks: list, streams, x: torch.Tensor, step: int) -> torch.Tensor:
    """tricks/instance_noise.py per cell: x + sigma(step) * N(0, 1), drawn from each cell's
    stream only when its sigma is not 0 (as the trick draws nothing then)."""
    sigmas = [t.sigma_at(step) for t in tricks]
    draws = [s != 0.0 for s in sigmas]
    if not any(draws):
        return x
    shape = tuple(x.shape[1:])
    fractions = [t.p.fraction for t in tricks]
    if all(f == 1.0 for f in fractions):
        noise = per_model(sigmas, x) * streams.draw("randn", shape, x.dtype, draws)
    else:  # the noise and the keep mask interleave in each cell's stream
        noise, keep = [], []
        for k, g in enumerate(streams.gens):
            if not draws[k]:
                noise.append(torch.zeros(shape, dtype=x.dtype))
                keep.append(torch.zeros(shape[0], dtype=torch.bool))
                continue
            noise.append(sigmas[k] * torch.randn(shape, generator=g, dtype=x.dtype))
            keep.append(torch.rand(shape[0], generator=g, dtype=torch.get_default_dtype())
                        < fractions[k] if fractions[k] < 1.0
                        else torch.ones(shape[0], dtype=torch.bool))
        noise = torch.stack(noise).to(x.device)
        keep = torch.stack(keep).to(x.device)
        noise = noise * keep.view(*keep.shape, *([1] * (x.dim() - 2)))
    return x + noise


# -- penalties -----------------------------------------------------------------------------------
def input_gradient(critic, x: torch.Tensor) -> torch.Tensor:
    """d critic(x) / dx per model and sample, [K, B, -1]: the models are independent, so the
    gradient of the sum over all models' outputs is each model's own."""
    out = critic(x)
    (grad,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    return grad.flatten(2)


def wgan_gp_penalty(tricks: list, streams, c) -> torch.Tensor:
    real, fake = c.real_in, c.fake_in
    shape = (real.shape[1], *([1] * (real.dim() - 2)))
    eps = streams.draw("rand", shape, torch.get_default_dtype())
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    grad = input_gradient(c.critic, x_hat)
    weight = per_model([t.p.gp_weight for t in tricks], grad[:, 0, 0])
    return weight * ((grad.norm(dim=2) - 1) ** 2).mean(1)


def gradient_penalty(tricks: list, streams, c) -> dict[str, torch.Tensor]:
    variants = {t.p.variant for t in tricks}
    if len(variants) != 1:
        raise ValueError("gradient_penalty variants differ within a fused group")
    variant = variants.pop()
    if variant == "r1":
        x = c.real_in.detach().requires_grad_(True)
        grad = input_gradient(c.critic, x)
        weight = per_model([t.p.weight / 2 for t in tricks], grad[:, 0, 0])
        return {"r1": weight * grad.square().sum(dim=2).mean(1)}
    x = c.real_in.detach()
    shape = tuple(x.shape[1:])
    std = x.flatten(1).std(dim=1).view(-1, *([1] * (x.dim() - 1)))
    scale = per_model([t.p.perturb for t in tricks], x)
    u = streams.draw("rand", shape, x.dtype)
    perturbed = x + scale * std * u
    alpha = streams.draw("rand", (shape[0], *([1] * (len(shape) - 1))),
                         torch.get_default_dtype())
    points = (x + alpha * (perturbed - x)).requires_grad_(True)
    grad = input_gradient(c.critic, points)
    weight = per_model([t.p.weight for t in tricks], grad[:, 0, 0])
    return {"dragan": weight * ((grad.norm(dim=2) - 1) ** 2).mean(1)}
