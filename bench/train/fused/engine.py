"""FusedTrainer: K cells' Trainers trained as one vectorised step (the design is in __init__.py)."""
from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Callable, Sequence

import torch

from bench.train import checkpoint
from bench.core.flags import hard_flags
from bench.train.runtime import watch_nondeterminism

from . import tricks as fused_tricks
from .adam import StackedAdam
from .nets import NotFusable, StackedNet, check_fusable, structure
from .streams import CellStreams
from .unrolled import unrolled_critic

ENGINE = "fused"
# data kinds whose nets have fused forms: the 2-D MLPs (and PacGAN's), and the DCGAN-style conv
# nets of image cells (nets.py: a conv layer of K models is one grouped convolution)
FUSED_KINDS = frozenset({"2d", "image"})


def group_refusal(trainers: Sequence) -> str | None:
    """Why these cells cannot be trained as one fused step (None: they can)."""
    if not trainers:
        return "no cells"
    t0 = trainers[0]
    if t0.data.kind not in FUSED_KINDS:
        return f"{t0.cell.data.name}: only 2-D and image cells are fused"
    for t in trainers:
        for trick in t.tricks:
            why = fused_tricks.refusal(trick)
            if why:
                return why
    c0 = t0.cell
    for t in trainers[1:]:
        c = t.cell
        if t.data is not t0.data and c.data != c0.data:
            return "cells train on different datasets"
        for what, a, b in (("net", c.net, c0.net), ("batch size", c.train.batch_size,
                                                     c0.train.batch_size),
                           ("step budget", c.train.steps, c0.train.steps),
                           ("log interval", c.train.log_every, c0.train.log_every),
                           ("G loss", c.train.g_loss, c0.train.g_loss),
                           ("stop_on", c.train.stop_on, c0.train.stop_on),
                           ("tricks", c.trick_names, c0.trick_names),
                           ("d_steps", t.n_d, t0.n_d), ("step", t.step, t0.step)):
            if a != b:
                return f"cells differ in {what}"
        if t.device != t0.device:
            return "cells are built on different devices"
    if any(t.num_classes for t in trainers):
        return "labelled cells are not fused"
    try:
        for net in ("G", "D"):
            check_fusable(getattr(t0.nets, net), net)
            first = structure(getattr(t0.nets, net))
            if any(structure(getattr(t.nets, net)) != first for t in trainers[1:]):
                return f"cells' {net} differ in structure"
    except NotFusable as exc:
        return str(exc)
    return None


class FusedTrainer:
    """Trains the cells of `trainers` (built and, where they had a checkpoint, resumed by the
    caller, each followed by `CellStreams.capture()` into `rng_states`) as one step on `device`.
    Afterwards each Trainer holds its cell's final state (nets, optimizers, stream, log, step),
    so records, checkpoints, sampling and scoring go through the Trainer as for one cell."""

    def __init__(self, trainers: Sequence, rng_states: Sequence[dict],
                 device: torch.device | str | None = None):
        why = group_refusal(trainers)
        if why:
            raise NotFusable(why)
        self.trainers = list(trainers)
        self.K = len(self.trainers)
        t0 = self.trainers[0]
        self.device = torch.device(device) if device is not None else t0.device
        self.cell0 = t0.cell
        self.steps, self.n_d, self.step = t0.steps, t0.n_d, t0.step
        self.batch = t0.cell.train.batch_size
        # samples drawn per update (batch x packing's multiple, where the loop has one)
        self.draws = getattr(t0, "draws", self.batch)
        self.z_dim = t0.cell.net.z_dim
        self.G = StackedNet([t.nets.G for t in self.trainers], "G", self.device)
        self.D = StackedNet([t.nets.D for t in self.trainers], "D", self.device)
        self.g_opt = StackedAdam(self.G.parameters(), [t.g_spec.lr for t in self.trainers],
                                 [t.g_spec.beta1 for t in self.trainers],
                                 [t.g_spec.beta2 for t in self.trainers],
                                 eps=t0.g_opt.defaults["eps"])
        self.d_opt = StackedAdam(self.D.parameters(), [t.d_spec.lr for t in self.trainers],
                                 [t.d_spec.beta1 for t in self.trainers],
                                 [t.d_spec.beta2 for t in self.trainers],
                                 eps=t0.d_opt.defaults["eps"])
        self.g_opt.load_cells([t.g_opt for t in self.trainers], self._cell_params("G"))
        self.d_opt.load_cells([t.d_opt for t in self.trainers], self._cell_params("D"))
        self.streams = CellStreams(self.trainers, list(rng_states), self.device)

        self.names = t0.tricks.names  # equal across the group
        self.by_name = {n: [t.tricks[i] for t in self.trainers] for i, n in enumerate(self.names)}
        ts = t0.tricks
        self.d_input_tricks = [t.name for t in ts.using("d_input")]
        self.penalty_tricks = [t.name for t in ts.using("penalty")]
        self.loss_name = ts.using("adversarial_loss")[0].name if ts.using("adversarial_loss") \
            else None
        self.critic_name = ts.using("g_critic")[0].name if ts.using("g_critic") else None
        self.scheduled = bool(ts.using("lr_scale"))
        # unrolled's G objective "value" (equal within a group: a param fused_plan.group_key keys on)
        objectives = {t.p.g_objective for t in self.by_name.get("unrolled", [])}
        if len(objectives) > 1:
            raise NotFusable("unrolled's g_objective differs within a fused group")
        self.g_value = objectives == {"value"}
        self._targets = self._fixed_targets() if ts.using("targets") else None

        self.alive = [True] * self.K
        self.results: list[tuple[str, str] | None] = [None] * self.K
        self._log_init()
        self.train_seconds = 0.0  # the group's, since this engine started
        self._seconds_before = [t.train_seconds for t in self.trainers]  # resumed cells'
        self.should_stop: Callable[[], bool] | None = None

    # -- per-cell state in and out --
    def _cell_params(self, net: str) -> list[list[torch.Tensor]]:
        stacked = self.G if net == "G" else self.D
        out = []
        for t in self.trainers:
            named = dict(getattr(t.nets, net).named_parameters())
            out.append([named[n] for n in stacked.names])
        return out

    def write_back(self, k: int) -> None:
        """Cell k's state into its Trainer: nets, optimizer moments, log and step."""
        t = self.trainers[k]
        self.G.write_back(k, t.nets.G)
        self.D.write_back(k, t.nets.D)
        self.g_opt.cell_state(k, t.g_opt, self._cell_params("G")[k])
        self.d_opt.cell_state(k, t.d_opt, self._cell_params("D")[k])
        self._log_flush([k])
        t.step = self.step
        # its share of the group's time
        t.train_seconds = self._seconds_before[k] + self.train_seconds / self.K

    def checkpoint_state(self, k: int) -> dict:
        """Cell k's checkpoint, as its Trainer would write it alone (its own RNG state)."""
        state = self.trainers[k].state_dict()
        state["rng"] = self.streams.cell_rng_state(k)
        return state

    def save_checkpoint(self, k: int) -> None:
        path = self.trainers[k].checkpoint_path()
        if path is not None:
            self.trainers[k].board_flush()  # as a cell alone does (Trainer.save_checkpoint)
            checkpoint.save_atomic(self.checkpoint_state(k), path)

    def make_record(self, k: int, status: str, reason: str = ""):
        """Cell k's record, from its Trainer, with `runtime.engine` saying how it was trained."""
        rec = self.trainers[k].make_record(status, reason)
        rec.runtime["engine"] = {"name": ENGINE, "cells": self.K, "device": str(self.device)}
        if self.device != self.trainers[k].device:
            rec.runtime["device"] = rec.device = str(self.device)
        return rec

    # -- loss log: per-term sums as [K] float64 tensors, flushed into each cell's LossLog --
    def _log_init(self) -> None:
        logs = [t.log for t in self.trainers]
        counts = {tuple(sorted(lg._count.items())) for lg in logs}
        if len(counts) != 1 or len({lg._acc_n for lg in logs}) != 1:
            raise NotFusable("cells' loss logs are at different points")
        self.count = dict(logs[0]._count)
        self.acc_n = logs[0]._acc_n
        self.acc = {name: torch.tensor([lg._acc.get(name, 0.0) for lg in logs],
                                       dtype=torch.float64, device=self.device)
                    for name in self.count}

    def _log_add(self, terms: dict[str, torch.Tensor]) -> None:
        for name, v in terms.items():
            prev = self.acc.get(name)
            v = v.detach().to(torch.float64)
            self.acc[name] = v if prev is None else prev + v
            self.count[name] = self.count.get(name, 0) + 1

    def _log_flush(self, cells) -> None:
        values = {name: acc.tolist() for name, acc in self.acc.items()}
        for k in cells:
            lg = self.trainers[k].log
            lg._acc = {name: vals[k] for name, vals in values.items()}
            lg._count = dict(self.count)
            lg._acc_n = self.acc_n

    def _log_end_step(self) -> bool:
        lg0 = self.trainers[0].log
        if self.acc_n + 1 == lg0.log_every or self.step + 1 == self.steps:
            live = [k for k in range(self.K) if self.alive[k]]
            self._log_flush(live)
            for k in live:
                self.trainers[k].log.end_step(self.step)
            self.acc, self.count, self.acc_n = {}, {}, 0
            return True
        self.acc_n += 1
        return False

    # -- one step --
    def _fixed_targets(self) -> tuple[torch.Tensor, torch.Tensor]:
        shape = self.batch  # D's outputs are [B] for the MLP nets; checked at first use
        real, fake = [], []
        for t in self.trainers:
            r, f = t.tricks.targets(torch.ones(shape), torch.zeros(shape), 0)
            real.append(r)
            fake.append(f)
        return torch.stack(real).to(self.device), torch.stack(fake).to(self.device)

    def _d_input(self, x: torch.Tensor, is_real: bool) -> torch.Tensor:
        for name in self.d_input_tricks:  # FUSED_HOOKS admits one d_input trick
            if name == "instance_noise":
                x = fused_tricks.instance_noise(self.by_name[name], self.streams, x, self.step)
        return x

    def _sample_z(self) -> torch.Tensor:
        return self.streams.draw("randn", (self.draws, self.z_dim), torch.get_default_dtype())

    def _terms(self, phase: str, c) -> dict[str, torch.Tensor]:
        if phase == "g" and self.g_value:
            # the Trainer skips G's adversarial term at weight 0 and adds unrolled's penalty
            # `value`; D(x) is scored at the unrolled D, real_in drawn after fake_in as there
            d_real = c.critic(self._d_input(c.real, True))
            return {"g_value": fused_tricks.game_value(d_real, c.d_fake)}
        terms = {f"{phase}_adv": fused_tricks.adversarial_loss(
            self.loss_name, self.cell0.train.g_loss, phase, c,
            self.by_name.get(self.loss_name) if self.loss_name else None)}
        if phase == "d":
            for name in self.penalty_tricks:
                if name == "wgan_gp":
                    terms["d_gp"] = fused_tricks.wgan_gp_penalty(self.by_name[name],
                                                                 self.streams, c)
                elif name == "gradient_penalty":
                    for key, v in fused_tricks.gradient_penalty(self.by_name[name], self.streams,
                                                                c).items():
                        terms[f"d_{key}"] = v
        return terms

    def d_loss(self, critic, real: torch.Tensor, fake: torch.Tensor):
        """Per-model D loss [K] and its terms (Trainer.d_loss, fused)."""
        real_in = self._d_input(real, True)
        fake_in = self._d_input(fake, False)
        d_real, d_fake = critic(real_in), critic(fake_in)
        if self._targets is not None:
            real_t, fake_t = self._targets
            if real_t.shape != d_real.shape:
                raise NotFusable("targets of multi-output discriminators are not fused")
        else:
            real_t, fake_t = torch.ones_like(d_real), torch.zeros_like(d_fake)
        c = SimpleNamespace(critic=critic, real_in=real_in, fake_in=fake_in, d_real=d_real,
                            d_fake=d_fake, real_t=real_t, fake_t=fake_t)
        terms = self._terms("d", c)
        return sum(terms.values()), terms

    def _lrs(self, net: str) -> list[float] | None:
        if not self.scheduled:
            return None
        return [(t.g_spec if net == "G" else t.d_spec).lr * t.tricks.lr_scale(self.step, net)
                for t in self.trainers]

    def _check_finite(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> None:
        """A cell whose loss is not finite ends `diverged` here, its state as before this update
        (what its Trainer raises on); the others go on."""
        finite = torch.isfinite(loss).tolist()
        for k, ok in enumerate(finite):
            if not ok and self.alive[k]:
                shown = ", ".join(f"{n}={v[k].item():.4g}" for n, v in terms.items())
                self.write_back(k)
                self.alive[k] = False
                self.results[k] = ("diverged", f"non-finite loss at step {self.step} ({shown})")

    def _update(self, net: StackedNet, opt: StackedAdam, loss: torch.Tensor,
                terms: dict[str, torch.Tensor], lrs) -> None:
        self._check_finite(loss, terms)
        grads = torch.autograd.grad(loss.sum(), net.parameters())
        opt.step(list(grads), lrs)
        self._log_add(terms)

    def train_step(self) -> None:
        d_lrs, g_lrs = self._lrs("D"), self._lrs("G")
        for _ in range(self.n_d):
            real, z = self.streams.real_batch(), self._sample_z()
            with torch.no_grad():
                fake = self.G(z)
            loss, terms = self.d_loss(self.D, real, fake)
            self._update(self.D, self.d_opt, loss, terms, d_lrs)
        z = self._sample_z()
        fake = self.G(z)
        critic = self.D
        if self.critic_name == "unrolled":
            critic = unrolled_critic(self, real, z, fake, d_lrs)
        fake_in = self._d_input(fake, False)
        c = SimpleNamespace(critic=critic, fake_in=fake_in, d_fake=critic(fake_in), real=real)
        terms = self._terms("g", c)
        self._update(self.G, self.g_opt, sum(terms.values()), terms, g_lrs)
        logged = self._log_end_step()
        self.step += 1
        if logged:
            self._sync_boards()
        if logged and self.cell0.train.stop_on == "hard":
            self._stop_on_hard_flags()

    def _stop_on_hard_flags(self) -> None:
        for k, t in enumerate(self.trainers):
            if not self.alive[k]:
                continue
            hard = hard_flags(t.flags())
            if hard:
                f = hard[0]
                self.write_back(k)
                self.alive[k] = False
                self.results[k] = ("diverged", f"stopped on failure flag {f['flag']} at step "
                                               f"{f['step']}: {f['detail']}")

    # -- the run --
    def train(self, stop_after: int | None = None) -> list[tuple[str, str]]:
        """Train every cell to the budget (or `stop_after` steps). Returns (status, reason) per
        cell, as Trainer.train does for one; checkpoints and probes as the Trainer's."""
        if self.device.type == "cuda":  # as seed_everything sets it for a CUDA cell
            torch.use_deterministic_algorithms(True, warn_only=True)
        found: set[str] = set()
        try:
            with watch_nondeterminism(found):
                return self._train(stop_after)
        finally:  # each record names the CUDA ops that warned, as a cell alone's does
            for t in self.trainers:
                t.nondeterministic_ops.update(found)

    def _train(self, stop_after: int | None) -> list[tuple[str, str]]:
        end = self.steps if stop_after is None else min(self.steps, stop_after)
        t0 = self.trainers[0]
        every = t0.cell.train.checkpoint_every
        probe_every = t0.probe_every if t0.probe is not None else 0
        for t in self.trainers:  # live curves: each cell's own TensorBoard run, as alone
            if t.tensorboard is not None:
                t.tensorboard.start(t.curves, t.step)
        started = time.perf_counter()
        try:
            while self.step < end and any(self.alive):
                if self.should_stop is not None and self.should_stop():
                    break
                self.train_step()
                if self.step == self.steps:
                    continue
                at_probe = probe_every and self.step % probe_every == 0
                at_checkpoint = every and self.step % every == 0
                if at_probe or at_checkpoint:
                    self.train_seconds += time.perf_counter() - started
                    for k in self._live():
                        self.write_back(k)
                        if at_probe:
                            self.trainers[k]._run_probe()
                        if at_checkpoint:
                            self.save_checkpoint(k)
                    if at_probe:
                        self._sync_boards()
                    started = time.perf_counter()
        finally:
            self.train_seconds += time.perf_counter() - started
            self.streams.close()
            self._sync_boards()
        status = ("done", "") if self.step >= self.steps else \
            ("interrupted", f"stopped at step {self.step}")
        for k in self._live():
            self.write_back(k)
            self.save_checkpoint(k)
            self.results[k] = status
        return [r if r is not None else status for r in self.results]

    def _sync_boards(self) -> None:
        """Each cell's new curve points (its log and probes) into its TensorBoard run, when
        $GANBENCH_TENSORBOARD is set (bench/train/tensorboard.py); the caller writes the final
        metrics and closes the runs (bench/schedule/fused/group.py)."""
        for t in self.trainers:
            if t.tensorboard is not None:
                t.tensorboard.sync(t.curves)

    def _live(self) -> list[int]:
        return [k for k in range(self.K) if self.alive[k]]
