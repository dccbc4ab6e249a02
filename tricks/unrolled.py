"""Unrolled GAN: G's loss is computed against D advanced k further D updates on the current batch,
so G anticipates D's response. Metz et al. 2017, "Unrolled Generative Adversarial Networks".

Second order (the default, the paper's eq. 12 and Fig. 1): theta_D^{j+1} = theta_D^j - Adam step
of grad L_D(theta_G, theta_D^j), for j < k, each step differentiable (`create_graph=True`) and
using the fake batch that carries G's graph, so G's gradient
    d f(theta_G, theta_D^k(theta_G)) / d theta_G
includes the term through the k updates that the paper credits for reducing mode collapse. The
unrolled D is evaluated with `torch.func.functional_call` on D's module, its parameters replaced
by theta_D^j and its buffers by clones (batch-norm statistics, spectral-norm vectors), and the
update rule is D's own optimizer (Adam with D's current moment estimates, step count, lr, betas,
eps, weight decay), written out differentiably. The authors' code (poolio/unrolled_gan) also
unrolls D's Adam.

`first_order = true`: the k updates run on a deep copy of D with a copy of its optimizer and no
graph to G (G's gradient treats theta_D^k as constants): the common cheap approximation and this
trick's version-1 behaviour.

Both: D's parameters, its optimizer state and the global RNG are left exactly as if never unrolled
(the unrolled steps draw random numbers, e.g. instance noise, inside `torch.random.fork_rng`).
D's buffers are never written by the unrolling (it works on clones), but G's own forward pass
goes through the unrolled critic, so buffers that a forward pass of D advances (spectral-norm
power-iteration vectors, batch-norm running statistics) miss that one G-phase update, as in
version 1.
Each unrolled step uses D's full per-step loss (the adversarial loss and every penalty added to
it every step); lazy regularisers (`gradient_penalty` with `interval` > 1, StyleGAN2's separate
update every N steps) are not part of the k steps, which stand for D's ordinary updates.
The critic returned to the loop supports what penalties ask of a D: calling it, `features(x)`,
`parameters()` and `named_parameters()` (the unrolled values, so weight penalties see them).

G's objective (`g_objective`): "cell" (the default) is the cell's G loss (`train.g_loss`: the
non-saturating -log D_k(G(z)) unless the cell sets "minimax") scored against the unrolled D_k.
"value" is Metz et al.'s: G minimises the game's value at the unrolled D,
    f(theta_G, theta_D^k(theta_G)) = E log D_k(x) + E log(1 - D_k(G(z))),
the negative of D's BCE loss with its plain 0/1 labels, real term included (theta_D^k depends on
theta_G, so the real term has a gradient in the second-order case; first order, it has none and
"value" is the minimax G loss against D_k). This is the reference notebook's
`AdamOptimizer(...).minimize(-unrolled_loss, var_list=gen_vars)` with `loss = mean(BCE(real, 1)
+ BCE(fake, 0))` (poolio/unrolled_gan `Unrolled GAN demo.ipynb` @ 67e2c7a, cell 13). It replaces
G's adversarial loss (weight 0) by the term `g_value`, so with "value" the trick also claims
the `adversarial_loss` slot: a trick with another loss (wgan_gp, relativistic, D2GAN) has no
such value.

Cost of second order (k=5, 32 px DCGAN width 64, batch 64, one CPU thread, measured under load;
`test_second_order_k5_memory_on_a_32px_cell`, a slow test): one step grows peak memory by about
480 MiB against about 100 MiB for a plain step, and takes about 7-10x as long. The graph of all
k updates (with their double backward) is held until G's backward, so memory grows with k.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from bench.core.config import OPTIONAL

from bench.trickapi.trick import TrickError
from tricks import Trick, register_trick


class _Features(nn.Module):
    """`D.features` as a forward, so functional_call can run it with replaced parameters."""

    def __init__(self, D: nn.Module):
        super().__init__()
        self.D = D

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.D.features(x)


class FunctionalCritic:
    """D evaluated with the given parameters and buffers (names as in D.named_parameters())."""

    def __init__(self, D: nn.Module, params: dict[str, torch.Tensor],
                 buffers: dict[str, torch.Tensor]):
        self.D, self.params, self.buffers = D, params, buffers

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return functional_call(self.D, {**self.params, **self.buffers}, (x,))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        state = {f"D.{k}": v for k, v in {**self.params, **self.buffers}.items()}
        return functional_call(_Features(self.D), state, (x,))

    def parameters(self):
        return iter(self.params.values())

    def named_parameters(self):
        return iter(self.params.items())


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with a finite derivative at 0 (where Adam's v is 0 the step is 0 anyway)."""
    pos = v > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))),
                       torch.zeros_like(v))


def adam_hyper(opt: torch.optim.Optimizer) -> dict:
    if not isinstance(opt, torch.optim.Adam):
        raise TrickError(f"unrolled (second order) unrolls Adam; D's optimizer is "
                         f"{type(opt).__name__}")
    group = opt.param_groups[0]
    if len(opt.param_groups) != 1 or group.get("amsgrad") or group.get("maximize"):
        raise TrickError("unrolled (second order) supports one Adam param group without "
                         "amsgrad/maximize")
    return {"lr": float(group["lr"]), "betas": tuple(group["betas"]), "eps": group["eps"],
            "weight_decay": group["weight_decay"]}


def adam_steps(loss_fn, params: dict[str, torch.Tensor], moments: dict[str, tuple],
               hyper: dict, k: int) -> dict[str, torch.Tensor]:
    """k differentiable Adam updates of `params` (torch.optim.Adam's update rule, written out).
    `moments[name]` = (step, exp_avg, exp_avg_sq) of D's optimizer (zeros if it has no state).
    `loss_fn(params)` returns D's loss; a parameter without a gradient is not updated."""
    lr, (b1, b2), eps, wd = hyper["lr"], hyper["betas"], hyper["eps"], hyper["weight_decay"]
    names = list(params)
    state = dict(moments)
    for _ in range(k):
        loss = loss_fn(params)
        grads = torch.autograd.grad(loss, [params[n] for n in names], create_graph=True,
                                    allow_unused=True)
        new = {}
        for name, g in zip(names, grads):
            p = params[name]
            if g is None:
                new[name] = p
                continue
            if wd:
                g = g + wd * p
            step, m, v = state[name]
            step = step + 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            denom = _safe_sqrt(v) / (1 - b2 ** step) ** 0.5 + eps
            new[name] = p - (lr / (1 - b1 ** step)) * m / denom
            state[name] = (step, m, v)
        params = new
    return params


@register_trick
class Unrolled(Trick):
    name = "unrolled"
    summary = ("G is scored against D unrolled k=5 Adam steps, backpropagated through the "
               "updates (second order; first_order option); D itself is unchanged; "
               "g_objective=value: G minimises the game's value at the unrolled D (Metz et al.)")
    source = "Metz et al. 2017"
    slots = ("g_critic",)
    version = 2  # v1 was first order only; second order is now the default

    @dataclass(frozen=True)
    class Params:
        k: int = 5
        first_order: bool = False
        # added after cells were stored: enters the cell id only when not "cell"
        g_objective: Literal["cell", "value"] = field(default="cell", metadata=OPTIONAL)

        def validate(self) -> None:
            if self.k < 1:
                raise ValueError("k must be >= 1")

    def claimed_slots(self):
        return self.slots + (("adversarial_loss",) if self.p.g_objective == "value" else ())

    def adversarial_weight(self, phase):
        return 0.0 if phase == "g" and self.p.g_objective == "value" else 1.0

    def penalty(self, ctx):
        if ctx.phase != "g" or self.p.g_objective != "value":
            return {}
        # ctx.critic is the unrolled D here; d_real is computed on first use, through it
        value = -(F.binary_cross_entropy_with_logits(ctx.d_real, torch.ones_like(ctx.d_real))
                  + F.binary_cross_entropy_with_logits(ctx.d_fake, torch.zeros_like(ctx.d_fake)))
        return {"value": value}

    def step_cost(self) -> float:
        # k more D updates in G's phase; second order differentiates through each (one more
        # unit per step for its double backward)
        return (2 + self.p.k * (1 if self.p.first_order else 2)) / 2

    def g_critic(self, ctx):
        devices = [ctx.z.device] if ctx.z.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if self.p.first_order:
                return self._first_order(ctx)
            return self._second_order(ctx)

    def _first_order(self, ctx):
        D = copy.deepcopy(ctx.nets.D)
        opt = type(ctx.d_optimizer)(D.parameters(), **ctx.d_optimizer.defaults)
        opt.load_state_dict(copy.deepcopy(ctx.d_optimizer.state_dict()))
        for _ in range(self.p.k):
            loss = ctx.d_loss_fn(D)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return D

    def _second_order(self, ctx):
        D, opt = ctx.nets.D, ctx.d_optimizer
        hyper = adam_hyper(opt)
        # theta_D^0 are constants for G (fresh leaves so D's own .grad is never touched)
        named = [(n, p) for n, p in D.named_parameters() if p.requires_grad]
        params = {n: p.detach().requires_grad_(True) for n, p in named}
        buffers = {n: b.detach().clone() for n, b in D.named_buffers()}
        moments = {}
        for n, p in named:
            s = opt.state.get(p, {})
            if s:
                moments[n] = (float(s["step"]), s["exp_avg"].detach(), s["exp_avg_sq"].detach())
            else:
                moments[n] = (0.0, torch.zeros_like(p), torch.zeros_like(p))

        def loss_fn(theta):
            return ctx.d_loss_fn(FunctionalCritic(D, theta, buffers), ctx.fake)

        unrolled = adam_steps(loss_fn, params, moments, hyper, self.p.k)
        return FunctionalCritic(D, unrolled, buffers)
