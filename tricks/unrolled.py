"""Unrolled GAN: G's loss is computed against a copy of D advanced k further D updates on the
current batch (with a copy of D's optimizer state), so G anticipates D's response. D itself is
left exactly as if never unrolled, and the global RNG is untouched.
Metz et al. 2017, "Unrolled Generative Adversarial Networks". This is the first-order variant
(no backpropagation through the k updates), the common practical choice."""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch

from tricks import Trick, register_trick


@register_trick
class Unrolled(Trick):
    name = "unrolled"
    summary = "G is scored against D unrolled k=5 extra steps; D itself is unchanged"
    source = "Metz et al. 2017"
    slots = ("g_critic",)

    @dataclass(frozen=True)
    class Params:
        k: int = 5

        def validate(self) -> None:
            if self.k < 1:
                raise ValueError("k must be >= 1")

    def g_critic(self, ctx):
        D = copy.deepcopy(ctx.nets.D)
        opt = type(ctx.d_optimizer)(D.parameters(), **ctx.d_optimizer.defaults)
        opt.load_state_dict(copy.deepcopy(ctx.d_optimizer.state_dict()))
        devices = [ctx.z.device] if ctx.z.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            for _ in range(self.p.k):
                loss = ctx.d_loss_fn(D)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        return D
