"""Deterministic mini-batch stream over an in-memory training set. Its whole state is
(epoch, position): the permutation of an epoch is a function of (seed, epoch), so resuming needs
no generator state and does not disturb the global RNG."""
from __future__ import annotations

import torch


class BatchStream:
    def __init__(self, data: torch.Tensor, batch_size: int, seed: int, device: torch.device):
        if len(data) < batch_size:
            raise ValueError(f"batch size {batch_size} exceeds the {len(data)} training samples")
        self.data = data.to(device)
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.data), generator=g).to(self.device)

    def next(self) -> torch.Tensor:
        if self.pos + self.batch_size > len(self.data):  # drop the ragged tail of an epoch
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._permutation()
        idx = self._perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.data[idx]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._perm = self._permutation()
