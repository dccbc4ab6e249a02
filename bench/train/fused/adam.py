"""Adam over stacked parameters [K, ...] with a learning rate and betas per model.

Written out as torch.optim.Adam's single-tensor update (the one it uses on the CPU), with each
per-model scalar computed in Python (double) exactly as Adam computes its scalars, then cast to
the parameters' dtype as the kernels cast a Python scalar: so each model's update rounds like a
single cell's. Per-model hyperparameters are then plain elementwise factors of shape [K, 1, ...].
"""
from __future__ import annotations

import math

import torch


def per_model(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """[K] Python floats as a tensor [K, 1, ...] broadcasting against `like` [K, ...]."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(
        -1, *([1] * (like.dim() - 1)))


class StackedAdam:
    def __init__(self, params: list[torch.Tensor], lrs: list[float], beta1s: list[float],
                 beta2s: list[float], eps: float = 1e-8):
        self.params = params
        self.lrs, self.beta1s, self.beta2s, self.eps = list(lrs), list(beta1s), list(beta2s), eps
        self.step_count = 0
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        self._consts: dict[tuple, torch.Tensor] = {}

    def _const(self, key: str, values: list[float], like: torch.Tensor) -> torch.Tensor:
        k = (key, like.dim(), tuple(values))
        t = self._consts.get(k)
        if t is None:
            if len(self._consts) > 256:
                self._consts.clear()
            t = self._consts[k] = per_model(values, like)
        return t

    @torch.no_grad()
    def step(self, grads: list[torch.Tensor], lrs: list[float] | None = None) -> None:
        """One update with `grads` (one per param); `lrs` overrides the base lrs this step
        (schedules)."""
        lrs = self.lrs if lrs is None else lrs
        self.step_count += 1
        n = self.step_count
        w1 = [1 - b1 for b1 in self.beta1s]
        w2 = [1 - b2 for b2 in self.beta2s]
        step_size = [-(lr / (1 - b1 ** n)) for lr, b1 in zip(lrs, self.beta1s)]
        bc2_sqrt = [math.sqrt(1 - b2 ** n) for b2 in self.beta2s]
        for p, g, m, v in zip(self.params, grads, self.exp_avg, self.exp_avg_sq):
            m.lerp_(g, self._const("w1", w1, p))
            v.mul_(self._const("b2", self.beta2s, p)).addcmul_(g * self._const("w2", w2, p), g)
            denom = (v.sqrt() / self._const("bc2", bc2_sqrt, p)).add_(self.eps)
            p.addcdiv_(m * self._const("ss", step_size, p), denom)

    # -- per-cell torch.optim.Adam state -----------------------------------------------------------
    def cell_state(self, k: int, opt: torch.optim.Adam, cell_params: list[torch.Tensor]) -> None:
        """Write model k's moments into a per-cell Adam over `cell_params` (same order)."""
        if self.step_count == 0:
            return
        for p, m, v in zip(cell_params, self.exp_avg, self.exp_avg_sq):
            opt.state[p] = {"step": torch.tensor(float(self.step_count)),
                            "exp_avg": m[k].detach().clone().to(p.device),
                            "exp_avg_sq": v[k].detach().clone().to(p.device)}

    @torch.no_grad()
    def load_cells(self, opts: list[torch.optim.Adam],
                   cell_params: list[list[torch.Tensor]]) -> None:
        """Start from each cell's Adam state (a resumed cell); all must be at one step."""
        steps = set()
        for k, (opt, params) in enumerate(zip(opts, cell_params)):
            for i, p in enumerate(params):
                s = opt.state.get(p)
                steps.add(int(s["step"]) if s else 0)
                if s:
                    self.exp_avg[i][k].copy_(s["exp_avg"])
                    self.exp_avg_sq[i][k].copy_(s["exp_avg_sq"])
        if len(steps) > 1:
            raise ValueError(f"fused cells' optimizers are at different steps ({sorted(steps)})")
        self.step_count = steps.pop() if steps else 0
