"""Loss curves: every term by name, averaged over `log_every` G steps. Each term is averaged
over the updates that produced it: D terms over the `d_steps` D updates of those steps, and a
lazy regulariser's term over the steps it ran on (so it is the term's typical value, not diluted
by the steps without it)."""
from __future__ import annotations

import torch


class LossLog:
    def __init__(self, log_every: int, steps: int, n_d: int):
        self.log_every, self.steps, self.n_d = log_every, steps, n_d
        self.curves: dict[str, list[list[float]]] = {}
        self._acc: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self._acc_n = 0

    def add(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self._acc[k] = self._acc.get(k, 0.0) + float(v.detach())
            self._count[k] = self._count.get(k, 0) + 1

    def end_step(self, step: int) -> bool:
        """Called after the G update of `step` (0-based). True when a log point was written."""
        self._acc_n += 1
        if self._acc_n == self.log_every or step + 1 == self.steps:
            for k, total in self._acc.items():
                self.curves.setdefault(k, []).append([step + 1, total / self._count[k]])
            self._acc, self._count, self._acc_n = {}, {}, 0
            return True
        return False

    def state_dict(self) -> dict:
        return {"curves": self.curves, "acc": dict(self._acc), "count": dict(self._count),
                "acc_n": self._acc_n}

    def load_state_dict(self, state: dict) -> None:
        self.curves = {k: [list(p) for p in v] for k, v in state["curves"].items()}
        self._acc, self._acc_n = dict(state["acc"]), int(state["acc_n"])
        # checkpoints written before per-term counts: every term came from every update
        self._count = dict(state.get("count") or {
            k: self._acc_n * (self.n_d if k.startswith("d_") else 1) for k in self._acc})
