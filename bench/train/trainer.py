"""The training loop of one cell. It calls the TrickSet's hooks and steps the optimizers; it never
names a trick (a test greps for this).

One "step" is one G update, preceded by `d_steps` D updates (1 unless a trick claims the slot).
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from bench.core.config import CellConfig
from bench.core.flags import detect_flags, hard_flags
from bench.core.record import Record
from bench.data import Dataset, load_dataset
from bench.train import checkpoint
from bench.train.losslog import LossLog
from bench.train.tensorboard import open_for as open_tensorboard
from bench.train.parts import class_count, make_nets, make_optimizers, make_tricks, param_count
from bench.train.runtime import (determinism, pick_device, rng_state, seed_everything,
                                 set_rng_state, versions, watch_nondeterminism)
from bench.train.state import check_state, load_trainer_state, trainer_state
from bench.train.stream import BatchStream
from bench.trickapi.trick import StepContext

CHECKPOINT = "checkpoint.pt"

Critic = Callable[[torch.Tensor], torch.Tensor]


class Diverged(Exception):
    pass


class FailureFlag(Diverged):
    """A hard failure flag ended the cell early (`train.stop_on = "hard"`)."""


class Trainer:
    def __init__(self, cell: CellConfig, *, workdir: Path | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 dataset: Dataset | None = None):
        self.cell = cell
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.workdir = workdir
        self.progress = progress
        self.data = dataset or load_dataset(cell.data.name, resolution=cell.data.resolution)
        self.tricks = make_tricks(cell, self.data.kind)  # canonical (name) order
        self.steps = cell.train.steps

        seed_everything(cell.seed, self.device)
        self.nets = make_nets(cell, self.data, self.tricks, self.device, self._reference_real)
        self._d_params = list(self.nets.D.parameters())  # frozen during G's backward pass
        opts = make_optimizers(cell, self.nets, self.tricks)
        self.g_spec, self.d_spec, self.g_opt, self.d_opt = (opts.g_spec, opts.d_spec,
                                                            opts.g_opt, opts.d_opt)
        self.n_d = self.tricks.d_steps()
        # samples drawn per update: the batch, times a trick's multiple (PacGAN's m)
        self.draws = cell.train.batch_size * self.tricks.batch_multiple()
        # lazy regularisers: a separate update every N steps (1: none) for each net
        self.lazy = {"d": self.tricks.lazy_interval("D"), "g": self.tricks.lazy_interval("G")}
        self.loss_fn: Callable[[StepContext], torch.Tensor] = \
            self.tricks.adversarial_loss_fn(cell.train.g_loss)
        # class labels travel with the batches only when a trick conditions on them
        self.num_classes = class_count(self.data) if self.tricks.wants_labels else None
        self.stream = BatchStream(self.data.train, self.draws, cell.seed, self.device,
                                  labels=self.data.train_labels if self.num_classes else None)

        self.step = 0
        self.log = LossLog(cell.train.log_every, self.steps, self.n_d)
        self.train_seconds = 0.0
        self.probe: Callable[[Trainer], dict[str, float]] | None = None
        self.probe_every = 0
        self.probe_seconds = 0.0  # curve scoring, kept out of train_seconds
        self.nondeterministic_ops: set[str] = set()  # CUDA ops that warned (runtime record)
        # Checked between steps (Ctrl-C, scheduler shutdown): stop, checkpoint, "interrupted".
        self.should_stop: Callable[[], bool] | None = None
        # live curves, when $GANBENCH_TENSORBOARD names a folder (bench/train/tensorboard.py)
        self.tensorboard = open_tensorboard(cell)

    @property
    def curves(self) -> dict[str, list[list[float]]]:
        return self.log.curves

    def _reference_real(self, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.cell.seed + 7919)
        idx = torch.randperm(len(self.data.train), generator=g)[:n]
        return self.data.train[idx].to(self.device)

    # -- one update of each net -----------------------------------------------------------------
    def _terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        weight = self.tricks.adversarial_weight(ctx.phase)
        # weight 0 (a penalty replaces the loss): skip it, so a non-finite value cannot leak in
        terms = {f"{ctx.phase}_adv": self.loss_fn(ctx) * weight} if weight else {}
        return self.tricks.penalties(ctx, terms)

    def d_loss(self, critic: Critic, real: torch.Tensor, z: torch.Tensor,
               fake: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The full D loss of a batch for `critic` (D, or a copy of it). `fake` defaults to G(z)
        without grad; pass a fake that carries G's graph to differentiate through D's update."""
        if fake is None:
            with torch.no_grad():
                fake = self.nets.G(z)
        real_in = self.tricks.d_input(real, True, self.step)
        fake_in = self.tricks.d_input(fake, False, self.step)
        d_real, d_fake = critic(real_in), critic(fake_in)
        real_t, fake_t = self.tricks.targets(torch.ones_like(d_real), torch.zeros_like(d_fake),
                                             self.step)
        ctx = StepContext(phase="d", step=self.step, steps=self.steps, nets=self.nets,
                          critic=critic, real=real, z=z, fake=fake, real_in=real_in,
                          fake_in=fake_in, d_real=d_real, d_fake=d_fake, real_t=real_t,
                          fake_t=fake_t)
        terms = self._terms(ctx)
        return sum(terms.values()), terms

    def _next_batch(self) -> torch.Tensor:
        """The next real batch; its labels (labelled data, a trick that wants them) condition
        G and D until the next batch, so the step's fakes share them row by row."""
        real, y = self.stream.next()
        if y is not None:
            self.tricks.condition(y)
        return real

    def _sample_z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.cell.net.z_dim, device=self.device)

    def _update(self, opt: torch.optim.Optimizer, loss: torch.Tensor,
                terms: dict[str, torch.Tensor]) -> None:
        if not torch.isfinite(loss):
            shown = ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items())
            raise Diverged(f"non-finite loss at step {self.step} ({shown})")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        self.log.add(terms)

    @contextmanager
    def _d_frozen(self):
        """G's updates must not compute grads for D."""
        for p in self._d_params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in self._d_params:
                p.requires_grad_(True)

    def _lazy_update(self, phase: str, real: torch.Tensor | None) -> None:
        """A lazy regulariser's own update (StyleGAN2): every N steps, on its own minibatch (D:
        a fresh real batch; G: fresh latents), loss = N x its terms, a separate optimizer step.
        The terms are logged unscaled."""
        n = self.lazy[phase]
        if n == 1 or self.step % n:
            return
        batch = self._next_batch() if real is None else real
        ctx = StepContext(phase=phase, step=self.step, steps=self.steps, nets=self.nets,
                          critic=self.nets.D, real=batch, z=self._sample_z(len(batch)),
                          fake=None,  # type: ignore[arg-type]  # no fakes in a lazy update
                          real_in=lambda: self.tricks.d_input(batch, True, self.step))
        opt = self.d_opt if phase == "d" else self.g_opt
        with self._d_frozen() if phase == "g" else nullcontext():
            terms = self.tricks.lazy_penalties(ctx)
            if terms:
                self._update(opt, n * sum(terms.values()), terms)

    def train_step(self) -> None:
        self.tricks.on_step(self.step)
        self._set_lr()
        for _ in range(self.n_d):
            real, z = self._next_batch(), self._sample_z(self.draws)
            loss, terms = self.d_loss(self.nets.D, real, z)
            self._update(self.d_opt, loss, terms)
        self._lazy_update("d", None)

        z = self._sample_z(self.draws)
        fake = self.nets.G(z)
        ctx = StepContext(phase="g", step=self.step, steps=self.steps, nets=self.nets,
                          critic=self.nets.D, real=real, z=z, fake=fake,
                          real_in=lambda: self.tricks.d_input(real, True, self.step),
                          d_loss_fn=lambda D_, fake_=None: self.d_loss(D_, real, z, fake_)[0],
                          d_optimizer=self.d_opt)
        critic = self.tricks.g_critic(ctx)
        if critic is not None:
            ctx.critic = critic
        ctx.fake_in = self.tricks.d_input(fake, False, self.step)
        ctx.d_fake = ctx.critic(ctx.fake_in)
        with self._d_frozen():
            terms = self._terms(ctx)
            self._update(self.g_opt, sum(terms.values()), terms)
        self._lazy_update("g", real)
        self.tricks.after_g_step(self.nets, self.step)
        logged = self.log.end_step(self.step)
        self.step += 1
        if logged and self.cell.train.stop_on == "hard":
            self._stop_on_hard_flag()

    def flags(self) -> list[dict]:
        """Failure flags on the curves so far (bench/core/flags.py). The loss flags need the BCE
        baseline's scale, so they are checked only when no trick replaces the loss."""
        return detect_flags(self.curves, bce_loss=not self.tricks.using("adversarial_loss"),
                            g_nonsaturating=self.cell.train.g_loss == "non_saturating")

    def _stop_on_hard_flag(self) -> None:
        hard = hard_flags(self.flags())
        if hard:
            f = hard[0]
            raise FailureFlag(f"stopped on failure flag {f['flag']} at step {f['step']}: "
                              f"{f['detail']}")

    def _set_lr(self) -> None:
        for net, opt, spec in (("G", self.g_opt, self.g_spec), ("D", self.d_opt, self.d_spec)):
            lr = spec.lr * self.tricks.lr_scale(self.step, net)
            for group in opt.param_groups:
                group["lr"] = lr

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return trainer_state(self)

    def load_state_dict(self, state: dict, where: str = "checkpoint") -> None:
        check_state(state, self.cell.cell_id, where)
        load_trainer_state(self, state)

    def checkpoint_path(self) -> Path | None:
        return self.workdir / CHECKPOINT if self.workdir else None

    def save_checkpoint(self) -> None:
        path = self.checkpoint_path()
        if path is not None:
            self.board_flush()
            checkpoint.save_atomic(self.state_dict(), path)

    def board_flush(self) -> None:
        """This cell's TensorBoard run on disk up to its current step (before a checkpoint)."""
        if self.tensorboard is not None:
            self.tensorboard.flush(self.curves)

    def try_resume(self) -> bool:
        """Resume from the cell's checkpoint if there is one. CheckpointError (naming the file)
        when it exists but cannot be read; the caller decides whether to move it aside."""
        path = self.checkpoint_path()
        if path is None or not path.exists():
            return False
        self.load_state_dict(checkpoint.load(path), str(path))
        return True

    # -- the run --------------------------------------------------------------------------------
    def train(self, stop_after: int | None = None) -> tuple[str, str]:
        """Train to the budget (or until `stop_after` steps, to simulate an interruption).
        Returns (status, reason)."""
        with watch_nondeterminism(self.nondeterministic_ops):
            return self._train(stop_after)

    def _train(self, stop_after: int | None) -> tuple[str, str]:
        end = self.steps if stop_after is None else min(self.steps, stop_after)
        every = self.cell.train.checkpoint_every
        bar = tqdm(total=self.steps, initial=self.step, disable=not self.progress,
                   desc=f"{self.cell.data.name} {self.cell.label} s{self.cell.seed}",
                   unit="step", leave=False, dynamic_ncols=True)
        started = time.perf_counter()
        board = self.tensorboard
        if board is not None:
            board.start(self.curves, self.step)
        try:
            while self.step < end:
                if self.should_stop is not None and self.should_stop():
                    break
                self.train_step()
                bar.update(1)
                if board is not None:
                    board.sync(self.curves)
                if self.step == self.steps:
                    continue  # the final state is scored and saved below
                at_probe = self.probe is not None and self.step % self.probe_every == 0
                at_checkpoint = every and self.step % every == 0
                if at_probe or at_checkpoint:
                    self.train_seconds += time.perf_counter() - started
                    if at_probe:
                        self._run_probe()  # before the checkpoint, so a resume keeps its point
                    if at_checkpoint:
                        self.save_checkpoint()
                    started = time.perf_counter()
        except Diverged as exc:
            return "diverged", str(exc)
        finally:
            self.train_seconds += time.perf_counter() - started
            bar.close()
            if board is not None:
                board.sync(self.curves)
        if self.step < self.steps:
            self.save_checkpoint()
            return "interrupted", f"stopped at step {self.step}"
        self.save_checkpoint()  # the final state: what `ganbench eval` rescores from
        return "done", ""

    def set_probe(self, probe: Callable[["Trainer"], dict[str, float]], every: int) -> None:
        """Score `probe(self)` every `every` steps into curves `eval_<name>`."""
        if every < 1:
            raise ValueError("probe interval must be >= 1")
        self.probe, self.probe_every = probe, every

    def _run_probe(self) -> None:
        # All RNG state is restored afterwards, so a run with curves is identical to one without.
        started, state = time.perf_counter(), rng_state(self.device)
        try:
            values = self.probe(self)
        finally:
            set_rng_state(state, self.device)
        for name, value in values.items():
            self.curves.setdefault(f"eval_{name}", []).append([self.step, float(value)])
        self.probe_seconds += time.perf_counter() - started

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        G = self.tricks.sampler(self.nets.G)  # e.g. an average of G's weights
        was_training = G.training
        G.eval()
        try:
            z = torch.randn(n, self.cell.net.z_dim, generator=generator, device=generator.device)
            if self.num_classes:  # uniform labels, so class coverage stays comparable
                y = torch.randint(self.num_classes, (n,), generator=generator,
                                  device=generator.device)
                self.tricks.condition(y.to(self.device))
            return G(z.to(self.device))
        finally:
            G.train(was_training)

    def board_final(self, record: Record) -> None:
        """The scored metrics and samples into this cell's TensorBoard run, when one is open."""
        if self.tensorboard is not None:
            self.tensorboard.final(record, self.workdir and self.workdir / "samples.npz")

    def close_board(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()

    def make_record(self, status: str, reason: str = "") -> Record:
        return Record(
            cell_id=self.cell.cell_id, variant_id=self.cell.variant_id, label=self.cell.label,
            config=self.cell.to_dict(), status=status, step=self.step, reason=reason,
            curves=self.curves,
            timings={"train_s": round(self.train_seconds, 3),
                     "curve_s": round(self.probe_seconds, 3),
                     "ms_per_step": round(1000 * self.train_seconds / max(self.step, 1), 3)},
            nets={"g_params": param_count(self.nets.G), "d_params": param_count(self.nets.D)},
            optim={"G": {"lr": self.g_spec.lr, "beta1": self.g_spec.beta1,
                         "beta2": self.g_spec.beta2},
                   "D": {"lr": self.d_spec.lr, "beta1": self.d_spec.beta1,
                         "beta2": self.d_spec.beta2},
                   "d_steps": self.n_d},
            runtime={"device": str(self.device), "threads": torch.get_num_threads(),
                     **determinism(self.nondeterministic_ops)},
            flags=self.flags(),
            versions=versions(), device=str(self.device))
