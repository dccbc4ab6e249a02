"""Per-cell random streams: each cell draws exactly the numbers it draws when trained alone.

A cell trained alone draws its latents and every trick's noise from the global CPU generator,
seeded by `seed_everything(seed)` and advanced by the nets' initialisation. Here each cell owns
a `torch.Generator` started from that same state (captured right after the cell's `Trainer` was
built or resumed), and every draw is made per cell, with the shape and in the order the single
cell's loop makes it, then stacked. Draws are made on the CPU even when the fused step runs on a
GPU: the 2-D reference cells run on the CPU, so a fused GPU cell sees the same data, latents and
noise as the CPU cell (its results then differ only through float arithmetic).

The batches come from each cell's own `BatchStream` permutation. Cells of one group share the
dataset and batch size, so their streams turn epochs at the same steps: one gather per step
serves all K cells.
"""
from __future__ import annotations

import contextlib
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import torch

from bench.train.runtime import rng_state


class CellStreams:
    def __init__(self, trainers, states: list[dict], device: torch.device):
        self.trainers, self.device = trainers, device
        # the full process RNG state of each cell (python, numpy, torch), as its checkpoint
        # would hold it (`capture`); the torch part lives on in the cell's generator
        self.rng = list(states)
        self.gens = [torch.Generator() for _ in trainers]
        for g, st in zip(self.gens, self.rng):
            g.set_state(st["torch"])
        positions = {(t.stream.epoch, t.stream.pos) for t in trainers}
        if len(positions) != 1:
            raise ValueError("fused cells must be at the same stream position (same step)")
        # On an accelerator the CPU draws are the serial part of a step: spread the cells over
        # CPU threads (torch releases the GIL while it fills) and copy from pinned memory.
        # On the CPU the threads belong to the step's own kernels.
        self._pin = device.type == "cuda"
        self._pool, self._chunks = None, []
        workers = min(16, os.cpu_count() or 1, len(trainers) // 16)
        if device.type != "cpu" and workers > 1:
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="cell-rng")
            step = -(-len(trainers) // workers)
            self._chunks = [range(i, min(i + step, len(trainers)))
                            for i in range(0, len(trainers), step)]
        self._perm_epoch = -1
        self._perms: torch.Tensor | None = None

    @staticmethod
    def capture() -> dict:
        """The global RNG state now: call right after building (and resuming) a cell's Trainer."""
        return rng_state(torch.device("cpu"))

    def cell_rng_state(self, k: int) -> dict:
        return {**self.rng[k], "torch": self.gens[k].get_state()}

    # -- data --------------------------------------------------------------------------------------
    def real_batch(self) -> torch.Tensor:
        """The next real batch of every cell, [K, B, ...]. Advances every cell's BatchStream
        exactly as its own `next()` would."""
        s0 = self.trainers[0].stream
        if s0.pos + s0.batch_size > len(s0.data):
            for t in self.trainers:
                st = t.stream
                st.epoch, st.pos = st.epoch + 1, 0
                st._perm = st._permutation()
        if self._perm_epoch != s0.epoch or self._perms is None:
            self._perms = torch.stack([t.stream._perm for t in self.trainers]).to(self.device)
            self._data = s0.data.to(self.device)
            self._perm_epoch = s0.epoch
        idx = self._perms[:, s0.pos:s0.pos + s0.batch_size]
        for t in self.trainers:
            t.stream.pos += s0.batch_size
        return self._data[idx]

    # -- random draws ------------------------------------------------------------------------------
    def draw(self, kind: str, shape: tuple[int, ...], dtype: torch.dtype,
             cells=None) -> torch.Tensor:
        """`torch.randn(shape)` (kind "randn") or `torch.rand(shape)` ("rand") from each cell's
        generator, stacked [K, *shape]. `cells`: only those cells draw (a bool per cell); the
        others get zeros and their generators do not move. Each cell's draw fills its own
        contiguous slice, which is what a fresh tensor of that shape gets."""
        fn = torch.randn if kind == "randn" else torch.rand
        out = torch.empty((len(self.gens), *shape), dtype=dtype, pin_memory=self._pin)

        def fill(ks) -> None:
            for k in ks:
                if cells is None or cells[k]:
                    fn(shape, generator=self.gens[k], dtype=dtype, out=out[k])
                else:
                    out[k].zero_()

        if self._pool is not None:
            list(self._pool.map(fill, self._chunks))
        else:
            fill(range(len(self.gens)))
        return out if self.device.type == "cpu" else out.to(self.device, non_blocking=True)

    @contextlib.contextmanager
    def forked(self) -> Iterator[None]:
        """Draws inside leave every generator where it was (torch.random.fork_rng per cell)."""
        saved = [g.get_state() for g in self.gens]
        try:
            yield
        finally:
            for g, s in zip(self.gens, saved):
                g.set_state(s)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
