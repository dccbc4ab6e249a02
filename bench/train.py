"""The training loop. It knows hooks, never a trick: every change a trick makes comes back as the
return value of a hook (see bench/trick.py).

One "step" is one G update, preceded by `d_steps` D updates (1 unless a trick claims the slot).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from bench import checkpoint
from bench.config import CellConfig, OptimConfig
from bench.data import Dataset, load_dataset
from bench.losses import non_saturating_loss
from bench.nets import build_nets
from bench.record import Record
from bench.registry import build_tricks
from bench.runtime import pick_device, rng_state, seed_everything, set_rng_state, versions
from bench.stream import BatchStream
from bench.trick import BuildContext, Nets, StepContext, TrickError, overrides

CHECKPOINT = "checkpoint.pt"


class Diverged(Exception):
    pass


def _adam(params, spec: OptimConfig) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=spec.lr, betas=(spec.beta1, spec.beta2))


class Trainer:
    def __init__(self, cell: CellConfig, *, workdir: Path | None = None,
                 device: str | torch.device | None = None, progress: bool = True,
                 dataset: Dataset | None = None):
        self.cell = cell
        self.device = device if isinstance(device, torch.device) else pick_device(device)
        self.workdir = workdir
        self.progress = progress
        self.data = dataset or load_dataset(cell.data.name, resolution=cell.data.resolution)
        # canonical (name) order; a disallowed set raises TrickError
        self.tricks = build_tricks(((t.name, t.param_dict) for t in cell.tricks), self.data.kind)
        for spec, trick in zip(cell.tricks, self.tricks):
            if spec.version != trick.version:
                raise TrickError(f"cell {cell.cell_id} was made with {spec.name} version "
                                 f"{spec.version}; the installed trick is version {trick.version}")
        self.steps = cell.train.steps

        seed_everything(cell.seed, self.device)
        nets = build_nets(cell.net, self.data.kind, self.data.shape)
        nets = Nets(nets.G.to(self.device), nets.D.to(self.device))
        ctx = BuildContext(kind=self.data.kind, shape=self.data.shape, net=cell.net,
                           steps=self.steps, batch_size=cell.train.batch_size, seed=cell.seed,
                           device=self.device, real_samples=self._reference_real)
        for t in sorted(self.tricks, key=lambda t: (t.build_order, t.name)):
            nets = t.build(nets, ctx)
        self.nets = Nets(nets.G.to(self.device), nets.D.to(self.device))
        self._d_params = list(self.nets.D.parameters())  # frozen during G's backward pass

        self.g_spec = self._chain_optimizer("G", cell.train.g_optim)
        self.d_spec = self._chain_optimizer("D", cell.train.d_optim)
        self.g_opt = _adam(self.nets.G.parameters(), self.g_spec)
        self.d_opt = _adam(self.nets.D.parameters(), self.d_spec)
        self.n_d = math.prod(t.d_steps() for t in self.tricks)
        self.loss_fn: Callable[[StepContext], torch.Tensor] = next(
            (t.adversarial_loss for t in self.tricks if overrides(t, "adversarial_loss")),
            non_saturating_loss)
        self.critic_trick = next((t for t in self.tricks if overrides(t, "g_critic")), None)
        self.penalizers = [t for t in self.tricks if overrides(t, "penalty")]
        self.stream = BatchStream(self.data.train, cell.train.batch_size, cell.seed, self.device)

        self.step = 0
        self.curves: dict[str, list[list[float]]] = {}
        self._acc: dict[str, float] = {}
        self._acc_n = 0
        self.train_seconds = 0.0
        self.probe: Callable[[Trainer], dict[str, float]] | None = None
        self.probe_every = 0
        self.probe_seconds = 0.0  # curve scoring, kept out of train_seconds

    # -- construction helpers -------------------------------------------------------------------
    def _reference_real(self, n: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.cell.seed + 7919)
        idx = torch.randperm(len(self.data.train), generator=g)[:n]
        return self.data.train[idx].to(self.device)

    def _chain_optimizer(self, net: str, spec: OptimConfig) -> OptimConfig:
        for t in self.tricks:
            spec = t.optimizer(net, spec)
        return spec

    # -- one update of each net -----------------------------------------------------------------
    def _d_input(self, x: torch.Tensor, is_real: bool) -> torch.Tensor:
        for t in self.tricks:
            x = t.d_input(x, is_real, self.step)
        return x

    def _terms(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        weight = math.prod(t.adversarial_weight(ctx.phase) for t in self.tricks)
        # weight 0 (a penalty replaces the loss): skip it, so a non-finite value cannot leak in
        terms = {f"{ctx.phase}_adv": self.loss_fn(ctx) * weight} if weight else {}
        for t in self.penalizers:
            for name, value in t.penalty(ctx).items():
                key = f"{ctx.phase}_{name}"
                if key in terms:
                    raise TrickError(f"loss term '{key}' is returned twice ({t.name})")
                terms[key] = value
        return terms

    def _d_loss(self, D: nn.Module, real: torch.Tensor, z: torch.Tensor
                ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            fake = self.nets.G(z)
        real_in, fake_in = self._d_input(real, True), self._d_input(fake, False)
        d_real, d_fake = D(real_in), D(fake_in)
        real_t, fake_t = torch.ones_like(d_real), torch.zeros_like(d_fake)
        for t in self.tricks:
            real_t, fake_t = t.targets(real_t, fake_t, self.step)
        ctx = StepContext(phase="d", step=self.step, steps=self.steps, nets=self.nets, critic=D,
                          real=real, z=z, fake=fake, real_in=real_in, fake_in=fake_in,
                          d_real=d_real, d_fake=d_fake, real_t=real_t, fake_t=fake_t)
        terms = self._terms(ctx)
        return sum(terms.values()), terms

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
        self._log(terms)

    def train_step(self) -> None:
        for t in self.tricks:
            t.on_step(self.step)
        self._set_lr()
        G, D = self.nets.G, self.nets.D
        for _ in range(self.n_d):
            real, z = self.stream.next(), self._sample_z(self.cell.train.batch_size)
            loss, terms = self._d_loss(D, real, z)
            self._update(self.d_opt, loss, terms)

        z = self._sample_z(self.cell.train.batch_size)
        fake = G(z)
        ctx = StepContext(phase="g", step=self.step, steps=self.steps, nets=self.nets, critic=D,
                          real=real, z=z, fake=fake,
                          real_in=lambda: self._d_input(real, True),
                          d_loss_fn=lambda D_: self._d_loss(D_, real, z)[0],
                          d_optimizer=self.d_opt)
        if self.critic_trick is not None:
            ctx.critic = self.critic_trick.g_critic(ctx)
        ctx.fake_in = self._d_input(fake, False)
        ctx.d_fake = ctx.critic(ctx.fake_in)
        for p in self._d_params:  # G's update must not compute grads for D
            p.requires_grad_(False)
        try:
            terms = self._terms(ctx)
            self._update(self.g_opt, sum(terms.values()), terms)
        finally:
            for p in self._d_params:
                p.requires_grad_(True)
        self.step += 1

    def _set_lr(self) -> None:
        for net, opt, spec in (("G", self.g_opt, self.g_spec), ("D", self.d_opt, self.d_spec)):
            lr = spec.lr * math.prod(t.lr_scale(self.step, net) for t in self.tricks)
            for group in opt.param_groups:
                group["lr"] = lr

    def _log(self, terms: dict[str, torch.Tensor]) -> None:
        for k, v in terms.items():
            self._acc[k] = self._acc.get(k, 0.0) + float(v.detach())
        if terms and next(iter(terms)).startswith("g_"):
            self._acc_n += 1
            if self._acc_n == self.cell.train.log_every or self.step + 1 == self.steps:
                for k, total in self._acc.items():
                    # D terms accumulate n_d times per step
                    n = self._acc_n * (self.n_d if k.startswith("d_") else 1)
                    self.curves.setdefault(k, []).append([self.step + 1, total / n])
                self._acc, self._acc_n = {}, 0

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "cell_id": self.cell.cell_id, "step": self.step,
            "G": self.nets.G.state_dict(), "D": self.nets.D.state_dict(),
            "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
            "tricks": {t.name: t.state_dict() for t in self.tricks},
            "stream": self.stream.state_dict(), "rng": rng_state(self.device),
            "curves": self.curves, "acc": (self._acc, self._acc_n),
            "train_seconds": self.train_seconds, "probe_seconds": self.probe_seconds,
        }

    def load_state_dict(self, state: dict) -> None:
        if state["cell_id"] != self.cell.cell_id:
            raise ValueError("checkpoint belongs to another cell")
        self.step = state["step"]
        self.nets.G.load_state_dict(state["G"])
        self.nets.D.load_state_dict(state["D"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        for t in self.tricks:
            t.load_state_dict(state["tricks"].get(t.name, {}))
        self.stream.load_state_dict(state["stream"])
        # step-derived trick state as the last completed step left it (sampling after a resume
        # or re-scoring must see the nets as training ended); train_step sets the next one
        for t in self.tricks:
            t.on_step(max(self.step - 1, 0))
        set_rng_state(state["rng"], self.device)
        self.curves = state["curves"]
        self._acc, self._acc_n = state["acc"]
        self.train_seconds = state["train_seconds"]
        self.probe_seconds = state.get("probe_seconds", 0.0)

    def _checkpoint_path(self) -> Path | None:
        return self.workdir / CHECKPOINT if self.workdir else None

    def save_checkpoint(self) -> None:
        path = self._checkpoint_path()
        if path is not None:
            checkpoint.save_atomic(self.state_dict(), path)

    def try_resume(self) -> bool:
        path = self._checkpoint_path()
        if path is None or not path.exists():
            return False
        self.load_state_dict(checkpoint.load(path, self.device))
        return True

    # -- the run --------------------------------------------------------------------------------
    def train(self, stop_after: int | None = None) -> tuple[str, str]:
        """Train to the budget (or until `stop_after` steps, to simulate an interruption).
        Returns (status, reason)."""
        end = self.steps if stop_after is None else min(self.steps, stop_after)
        every = self.cell.train.checkpoint_every
        bar = tqdm(total=self.steps, initial=self.step, disable=not self.progress,
                   desc=f"{self.cell.data.name} {self.cell.label} s{self.cell.seed}",
                   unit="step", leave=False, dynamic_ncols=True)
        started = time.perf_counter()
        try:
            while self.step < end:
                self.train_step()
                bar.update(1)
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
        G = self.nets.G
        was_training = G.training
        G.eval()
        try:
            z = torch.randn(n, self.cell.net.z_dim, generator=generator, device=generator.device)
            return G(z.to(self.device))
        finally:
            G.train(was_training)

    def make_record(self, status: str, reason: str = "") -> Record:
        return Record(
            cell_id=self.cell.cell_id, variant_id=self.cell.variant_id, label=self.cell.label,
            config=self.cell.to_dict(), status=status, step=self.step, reason=reason,
            curves=self.curves,
            timings={"train_s": round(self.train_seconds, 3),
                     "curve_s": round(self.probe_seconds, 3),
                     "ms_per_step": round(1000 * self.train_seconds / max(self.step, 1), 3)},
            versions=versions(), device=str(self.device))

