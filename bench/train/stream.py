"""Deterministic mini-batch stream over an in-memory training set. Its whole state is
(epoch, position): the permutation of an epoch is a function of (seed, epoch), so resuming needs
no generator state and does not disturb the global RNG. With `labels`, each batch comes with
the class labels of its samples (the loop carries them only when a trick conditions on them)."""
from __future__ import annotations

import torch


class BatchStream:
    def __init__(self, data: torch.Tensor, batch_size: int, seed: int, device: torch.device,
                 labels: torch.Tensor | None = None):
        if len(data) < batch_size:
            raise ValueError(f"batch size {batch_size} exceeds the {len(data)} training samples")
        if labels is not None and len(labels) != len(data):
            raise ValueError(f"{len(labels)} labels for {len(data)} training samples")
        self.data = data.to(device)
        self.labels = labels.to(device) if labels is not None else None
        self.batch_size, self.seed, self.device = batch_size, seed, device
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation()

    def _permutation(self) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.data), generator=g).to(self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The next batch and its labels (None without labels)."""
        if self.pos + self.batch_size > len(self.data):  # drop the ragged tail of an epoch
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._permutation()
        idx = self._perm[self.pos:self.pos + self.batch_size]
        self.pos += self.batch_size
        return self.data[idx], (self.labels[idx] if self.labels is not None else None)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = state["epoch"], state["pos"]
        self._perm = self._permutation()
