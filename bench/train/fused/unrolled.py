"""The unrolled GAN's critic (tricks/unrolled.py) for K fused models: each model's D after k of its
own Adam steps on the step's batch, with its own learning rate and betas. First order: a
detached copy stepped by StackedAdam. Second order: k differentiable Adam updates (tricks/
unrolled.py's `adam_steps`, per model), so G's gradient flows through D's updates; one
`torch.autograd.grad` of the sum over the models' losses gives each model its own gradient (the
models share no parameters). The cells' random draws inside are forked, as
`torch.random.fork_rng` does for a cell alone.
"""
from __future__ import annotations

import torch

from .adam import StackedAdam, per_model
from .nets import NotFusable


def _safe_sqrt(v: torch.Tensor) -> torch.Tensor:
    """sqrt with a finite derivative at 0, as tricks/unrolled.py's (Adam's v is 0 where the
    step is 0 anyway)."""
    pos = v > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, v, torch.ones_like(v))),
                       torch.zeros_like(v))


def unrolled_critic(engine, real, z, fake, d_lrs):
    """The critic G is scored against: each model's D after k of its own Adam steps
    (tricks/unrolled.py, per model), first or second order as the group's cells ask."""
    tricks = engine.by_name["unrolled"]
    ks = {t.p.k for t in tricks}
    orders = {t.p.first_order for t in tricks}
    if len(ks) != 1 or len(orders) != 1:
        raise NotFusable("unrolled's k or order differs within a fused group")
    k, first_order = ks.pop(), orders.pop()
    lrs = d_lrs if d_lrs is not None else engine.d_opt.lrs
    with engine.streams.forked():
        if first_order:
            return _first_order(engine, real, z, k, lrs)
        return _second_order(engine, real, fake, k, lrs)


def functional_critic(engine, params, buffers):
    """The stacked D at `params` / `buffers` (an unrolled D), callable as D is."""
    D = engine.D

    def critic(x):
        return D(x, params, buffers)
    critic.features = lambda x: D.features(x, params, buffers)  # type: ignore[attr-defined]
    return critic


def _first_order(engine, real, z, k, lrs):
    params = {n: p.detach().clone().requires_grad_(True) for n, p in engine.D.params.items()}
    buffers = {n: b.clone() for n, b in engine.D.buffers.items()}
    opt = StackedAdam([params[n] for n in engine.D.names], lrs, engine.d_opt.beta1s,
                      engine.d_opt.beta2s, engine.d_opt.eps)
    opt.step_count = engine.d_opt.step_count
    opt.exp_avg = [m.clone() for m in engine.d_opt.exp_avg]
    opt.exp_avg_sq = [v.clone() for v in engine.d_opt.exp_avg_sq]
    critic = functional_critic(engine, params, buffers)
    for _ in range(k):
        with torch.no_grad():
            fake = engine.G(z)
        loss, _ = engine.d_loss(critic, real, fake)
        grads = torch.autograd.grad(loss.sum(), [params[n] for n in engine.D.names])
        opt.step(list(grads))
    return functional_critic(engine, {n: p.detach() for n, p in params.items()}, buffers)


def _second_order(engine, real, fake, k, lrs):
    """k differentiable Adam steps of every model's D (tricks/unrolled.py adam_steps with
    per-model lr and betas): G's gradient flows through the updates."""
    opt = engine.d_opt
    names = engine.D.names
    params = {n: engine.D.params[n].detach().requires_grad_(True) for n in names}
    buffers = {n: b.detach().clone() for n, b in engine.D.buffers.items()}
    state = {n: (float(opt.step_count), m.detach(), v.detach())
             for n, m, v in zip(names, opt.exp_avg, opt.exp_avg_sq)}
    b1s, b2s, eps = opt.beta1s, opt.beta2s, opt.eps
    for _ in range(k):
        loss, _ = engine.d_loss(functional_critic(engine, params, buffers), real, fake)
        grads = torch.autograd.grad(loss.sum(), [params[n] for n in names],
                                    create_graph=True, allow_unused=True)
        new = {}
        for n, g in zip(names, grads):
            p = params[n]
            if g is None:
                new[n] = p
                continue
            step, m, v = state[n]
            step = step + 1
            m = per_model(b1s, p) * m + per_model([1 - b for b in b1s], p) * g
            v = per_model(b2s, p) * v + per_model([1 - b for b in b2s], p) * g * g
            denom = _safe_sqrt(v) / per_model([(1 - b ** step) ** 0.5 for b in b2s], p) + eps
            new[n] = p - per_model([lr / (1 - b ** step) for lr, b in zip(lrs, b1s)], p) \
                * m / denom
            state[n] = (step, m, v)
        params = new
    return functional_critic(engine, params, buffers)
