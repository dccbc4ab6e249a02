"""Core types of the data layer: the error type and the immutable ``Dataset`` record.

Torch-free to import (the CLI's parsers and torch-free commands such as `report` name datasets
through this package); torch is imported where tensors are made."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


class DataError(Exception):
    """A data problem the user can fix (unknown name, missing files, bad option).

    The message is always ONE line, suitable for printing without a traceback.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """A loaded dataset. Instances are cached and SHARED: never mutate the tensors in place.

    ``train``/``test`` are float32 ``[N, *shape]`` scaled to [-1, 1] (2-D sets: the mode centres lie
    in [-1, 1]; samples may exceed it by a few ``sigma``). ``test`` is the reference split for metrics.
    Labels are int64 ``[N]`` (stacked sets: ``[N, 3]``, one class per channel); ``None`` for 2-D sets.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None
    test_labels: torch.Tensor | None
    num_classes: int | None
    num_modes: int
    centers: torch.Tensor | None = None
    sigma: float | None = None

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, kind={self.kind!r}, shape={self.shape}, "
            f"train={len(self.train)}, test={len(self.test)}, num_classes={self.num_classes}, "
            f"num_modes={self.num_modes}, sigma={self.sigma})"
        )


def mode_ids(labels: torch.Tensor) -> torch.Tensor:
    """Mode id per sample: ``100*a + 10*b + c`` for stacked labels ``[N, 3]``; the class for ``[N]``."""
    import torch

    labels = torch.as_tensor(labels)
    if labels.dim() == 1:
        return labels.long()
    if labels.dim() == 2 and labels.shape[1] == 3:
        lab = labels.long()
        return 100 * lab[:, 0] + 10 * lab[:, 1] + lab[:, 2]
    raise ValueError(f"mode_ids expects labels of shape [N] or [N, 3], got {tuple(labels.shape)}")
