"""A store with known effects, written without training: records plus grid memberships.

ring8, seeds 0-4: high_quality = 0.30 + seed offset + Σ trick effects + interactions + LR effect
+ a small deterministic noise; modes and reverse_kl follow from it. spectral_norm has a real
effect (+0.20), label_flip none, instance_noise hurts (−0.10) and interacts with spectral_norm
(+0.06). dropout diverges on seed 1, ttur fails on seed 2, self_attention is not applicable,
wgan_gp+relativistic is a conflict. Designs: add-one, pairs, factorial (sn, lf, in), leave-one-out.
A second grid "synth-tune" trains baseline and spectral_norm at two LRs (tune.lr).
digits (2 seeds): baseline and spectral_norm with image metrics.
Every scored cell gets a sample file (bench.store.samples format) and curves.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

from bench.core.config import CellConfig, DataConfig, OptimConfig, TrainConfig, TrickSpec
from bench.core.record import Record
from bench.core.trick_versions import installed_trick_versions
from bench.store import Store

SEEDS = (0, 1, 2, 3, 4)
SEED_OFF = (0.00, 0.03, -0.02, 0.05, -0.01)
EFFECT = {"spectral_norm": 0.20, "label_flip": 0.0, "instance_noise": -0.10, "dropout": 0.05,
          "ttur": 0.02}
INTERACTION = {("instance_noise", "spectral_norm"): 0.06}
LR_EFFECT = {("baseline", 5e-4): -0.10, ("spectral_norm", 5e-4): 0.10}
BASE_LR = 1e-3
FACTORS = ("instance_noise", "label_flip", "spectral_norm")
VERSIONS = installed_trick_versions()  # records of the installed versions (the report's default)


def noise(label: str, seed: int, lr: float, scale: float = 0.01) -> float:
    h = int(hashlib.sha256(f"{label}/{seed}/{lr}".encode()).hexdigest()[:8], 16)
    return float(np.random.default_rng(h).normal(0, scale))


def high_quality(tricks: tuple[str, ...], seed: int, lr: float = BASE_LR) -> float:
    label = "+".join(sorted(tricks)) or "baseline"
    v = 0.30 + SEED_OFF[seed] + sum(EFFECT.get(t, 0.0) for t in tricks)
    v += sum(e for pair, e in INTERACTION.items() if set(pair) <= set(tricks))
    v += LR_EFFECT.get((label, lr), 0.0)
    return v + noise(label, seed, lr)


def metrics_2d(tricks, seed, lr=BASE_LR) -> dict[str, float]:
    hq = high_quality(tricks, seed, lr)
    return {"high_quality": hq, "modes": float(min(8, int(5 + 8 * hq))),
            "reverse_kl": 1.5 - 2 * hq + noise("kl" + "+".join(tricks), seed, lr)}


def metrics_image(tricks, seed) -> dict[str, float]:
    good = 1.0 if "spectral_norm" in tricks else 0.0
    n = noise("img" + "+".join(tricks), seed, 0, 0.5)
    return {"fid": 12.0 - 4 * good + n, "kid_mean": 0.4 - 0.1 * good + n / 100,
            "precision": 0.3 + 0.1 * good, "recall": 0.1 + 0.02 * seed, "modes": 10.0,
            "is_mean": 5.0, "is_std": 0.1}


def cell(dataset: str, tricks, seed: int, lr: float = BASE_LR) -> CellConfig:
    opt = OptimConfig(lr=lr)
    return CellConfig(data=DataConfig(dataset), train=TrainConfig(steps=500, batch_size=64,
                      g_optim=opt, d_optim=opt),
                      tricks=tuple(TrickSpec.of(t, version=VERSIONS.get(t, 1)) for t in tricks),
                      seed=seed)


class SyntheticStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.store = Store(self.root)
        self.cells: dict[tuple, CellConfig] = {}

    def add(self, dataset, tricks, seed, *, lr=BASE_LR, status=None, reason="") -> CellConfig:
        tricks = tuple(sorted(tricks))
        c = cell(dataset, tricks, seed, lr)
        key = (dataset, tricks, seed, lr)
        if key in self.cells:
            return c
        self.cells[key] = c
        kind = "2d" if dataset == "ring8" else "image"
        status = status or "done"
        metrics = {}
        if status == "done":
            metrics = metrics_2d(tricks, seed, lr) if kind == "2d" else metrics_image(tricks, seed)
        flags = ([{"flag": "d_loss_collapse", "step": 300, "detail": "synthetic"}]
                 if tricks == ("dropout",) and seed == 0 else [])
        steps = np.arange(100, 600, 100)
        curves = {"d_adv": [[int(s), 1.3 - s / 1000 + 0.01 * seed] for s in steps],
                  "g_adv": [[int(s), 0.8 + s / 1000] for s in steps]}
        if status == "done":
            final = metrics["modes"] if kind == "2d" else metrics["fid"]
            curves["eval_modes" if kind == "2d" else "eval_fid"] = [
                [int(s), final * s / 500] for s in steps]
        rec = Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label, config=c.to_dict(),
                     status=status, step=500 if status == "done" else 250, reason=reason,
                     metrics=metrics, curves=curves if status in ("done", "diverged") else {},
                     protocol={"kind": kind, "dataset": dataset, "num_generated": 2500} if metrics else {},
                     timings={"train_s": 2.0 + seed, "eval_s": 0.1, "ms_per_step": 4.0} if status == "done" else {},
                     nets={"g_params": 1000 + 10 * len(tricks), "d_params": 2000},
                     optim={"G": {"lr": lr, "beta1": 0.5, "beta2": 0.999},
                            "D": {"lr": lr * (4 if "ttur" in tricks else 1), "beta1": 0.5,
                                  "beta2": 0.999}, "d_steps": 1},
                     runtime={"device": "cpu", "threads": 1}, device="cpu", flags=flags,
                     versions={"ganbench": "0.1.0"})
        self.store.put(rec)
        if status == "done":
            self._samples(c, kind, seed)
        return c

    def _samples(self, c: CellConfig, kind: str, seed: int) -> None:
        folder = self.store.cell_dir(c.cell_id)
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        if kind == "2d":
            angles = np.arange(8) * 2 * np.pi / 8
            centres = np.stack([np.cos(angles), np.sin(angles)], 1)
            points = centres[rng.integers(0, 8, 300)] + rng.normal(0, 0.05, (300, 2))
            np.savez(folder / "samples.npz", points=points.astype(np.float32), centres=centres)
        else:
            images = rng.integers(0, 256, (64, 1, 16, 16), dtype=np.uint8)
            np.savez(folder / "samples.npz", images=images)

    def put(self, c: CellConfig, hq: float, *, created: float = 0.0, config=None) -> CellConfig:
        """A scored 2-D record of any cell (e.g. one with its own net or optimizer settings) with
        high_quality `hq`; `config`: the stored config dict, when it is to differ from the cell's."""
        ids = (c.cell_id, c.variant_id)
        if config is not None:  # ids of the stored config, as the harness would give them
            ids = tuple(hashlib.sha256(json.dumps({k: v for k, v in config.items() if k not in
                        drop}, sort_keys=True).encode()).hexdigest()[:16] for drop in ((), ("seed",)))
        self.store.put(Record(
            cell_id=ids[0], variant_id=ids[1], label=c.label,
            config=config or c.to_dict(), status="done", step=c.train.steps,
            metrics={"high_quality": hq, "modes": 8.0, "reverse_kl": 1.0 - hq},
            protocol={"kind": "2d", "dataset": c.data.name, "num_generated": 2500},
            optim={"G": {"lr": c.train.g_optim.lr}, "D": {"lr": c.train.d_optim.lr}},
            nets={"g_params": 1, "d_params": 1}, created_at=1000.0 + created))
        return c

    def member(self, design, dataset, c: CellConfig, role, **info):
        tricks = [t.name for t in c.tricks]
        return {"design": design, "dataset": dataset, "cell_id": c.cell_id,
                "variant_id": c.variant_id,
                "info": {"label": c.label, "tricks": tricks, "role": role,
                         "factors": info.get("factors", {}), "sweep": info.get("sweep", {}),
                         "tune": info.get("tune", {})}}


def build(root: Path) -> SyntheticStore:
    s = SyntheticStore(root)
    members = []
    blocked = {("self_attention",): ("not-applicable", "self_attention does not apply to 2d data"),
               ("relativistic", "wgan_gp"): ("conflict", "wgan_gp and relativistic both claim "
                                                          "the adversarial_loss slot")}

    def add(design, tricks, role, **info):
        tricks = tuple(sorted(tricks))
        for seed in SEEDS:
            status, reason = blocked.get(tricks, (None, ""))
            if tricks == ("dropout",) and seed == 1:
                status, reason = "diverged", "d_loss is nan at step 250"
            if tricks == ("ttur",) and seed == 2:
                status, reason = "failed", "RuntimeError: synthetic failure"
            c = s.add("ring8", tricks, seed, status=status, reason=reason)
            members.append(s.member(design, "ring8", c, role, **info))

    for t in [(), ("spectral_norm",), ("label_flip",), ("instance_noise",), ("dropout",),
              ("ttur",), ("self_attention",)]:
        add("add-one", t, "baseline" if not t else "variant")
    add("pairs", (), "baseline")
    for pair in itertools.combinations(FACTORS, 2):
        add("pairs", pair, "variant")
    add("pairs", ("wgan_gp", "relativistic"), "variant")
    for bits in itertools.product((0, 1), repeat=len(FACTORS)):
        tricks = tuple(f for f, b in zip(FACTORS, bits) if b)
        add("factorial", tricks, "baseline" if not tricks else "variant",
            factors=dict(zip(FACTORS, bits)))
    add("leave-one-out", (), "baseline")
    add("leave-one-out", FACTORS, "all")
    for t in FACTORS:
        add("leave-one-out", tuple(f for f in FACTORS if f != t), "variant")
    for seed in (0, 1):
        for t in [(), ("spectral_norm",)]:
            c = s.add("digits", t, seed)
            members.append(s.member("add-one", "digits", c, "baseline" if not t else "variant"))
    spec = {"description": "synthetic", "designs": {"ring8": "add-one", "digits": "add-one"},
            "tune": {}, "base_lr": {"ring8": BASE_LR, "digits": BASE_LR}}
    s.store.put_grid("synth", spec, members)

    tune_members = []
    for lr in (BASE_LR, 5e-4):
        for t in [(), ("spectral_norm",)]:
            for seed in SEEDS[:3]:
                c = s.add("ring8", t, seed, lr=lr)
                tune_members.append(s.member("add-one", "ring8", c,
                                             "baseline" if not t else "variant",
                                             tune={"lr": lr}))
    s.store.put_grid("synth-tune", {"description": "tuned", "designs": {"ring8": "add-one"},
                                    "tune": {"lr": [BASE_LR, 5e-4]},
                                    "base_lr": {"ring8": BASE_LR}}, tune_members)
    return s
