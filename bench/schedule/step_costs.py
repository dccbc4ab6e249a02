"""Calibrated time per step of a cell on one CPU thread, for estimates before anything is stored
(`run --dry-run` on a fresh store) and for handing out long cells first (bench/schedule/staged.py).

Sources (re-measure with the commands below and update the numbers together):
- 2-D baseline, batch 256, width 128: 6.33 ms/step, the median of the 6 baseline records of
  `ring8-tuned` (lr 5e-4 and 2e-3) in results/previous-default/records.jsonl, trained on the idle
  2-core reference machine (timings.ms_per_step). The trick ratios below for "2d" are the
  medians of the same run's records (6 cells each; 12 for wgan_gp).
- images (digits 16 px, batch 64, width 32): 29.9 ms/step in results/previous-default/records.jsonl,
  measured under load; the same run's ring8 baseline took 12.5 ms/step against 6.33 idle, so the
  idle value is taken as 29.9 / 1.97 = 15.2 ms/step. The "image" trick ratios are that run's
  (one cell each, same load for all).
- how the cost grows with batch x width (`_scale`): CPU time per step measured under heavy load
  (process CPU time of a Trainer's steps after 10 warm-up steps, 1 thread, nice; a script around
  `Trainer.train(stop_after=...)`): ring8 20.7 ms at batch 256 / width 128, 9.9 at 128/64, 9.7
  at 64/64, 8.0 at 64/32; digits 72.9 ms at 64/32 and 28.2 at 32/16. A fixed per-step cost
  (Python and op dispatch) dominates small nets, so the model is fixed + per_unit * batch *
  width, its fixed share fitted on 2-D 64/64 vs 256/128 (0.47 of the cost) and digits 32/16 vs
  64/32 (0.39).
- per-cell seconds outside the steps (build, final scoring, curve points, store): 2-D 0.2 s;
  images 1.2 s (eval_s 0.7 + curve_s 0.45 in the digits records, under load).
- PacGAN's nets (`arch = "pacgan"`, bench/nets/pacgan.py; batch 100): 3.85 x the 2-D baseline
  at 256/128 (CPU time per step, 1 thread, measured beside each other on the shared 2-core
  machine: 35.0 and 31.0 ms against 8.4 and 8.8 ms), so 6.33 x 3.85 = 24.4 ms idle at batch 100;
  packing (m = 2) 1.15-1.21 x on these nets and 1.18-1.20 x on the MLP (same measurement);
  on digits 16 px (batch 64, width 32) 1.28 and 1.33 x (two measurements the same way).
Everything here is an estimate: the run's own records replace it as soon as cells are stored
(bench/dry_run.py prefers them)."""
from __future__ import annotations

# ms per step of the baseline at (batch, width) = REF[kind], idle reference machine, 1 thread
BASE_MS = {"2d": 6.33, "image": 15.2}
REF = {"2d": (256, 128), "image": (64, 32)}
# share of BASE_MS that does not grow with batch x width (fitted on the pairs above: ring8 64x64
# costs 0.47 of 256x128 although it is 1/8 of the work; digits 32x16 0.39 of 64x32 at 1/4)
FIXED_SHARE = {"2d": 0.39, "image": 0.18}
CELL_OVERHEAD_S = {"2d": 0.2, "image": 1.2}
# named architectures (NetConfig.arch): ms per step of their baseline at their reference batch,
# idle reference machine, 1 thread; the cost grows with the batch like the 2-D MLP's
ARCH_MS = {"pacgan": (24.4, 100)}

# time per step relative to the baseline's, by data kind (trick alone, its default params)
RATIO = {
    "2d": {"batch_norm": 1.30, "dropout": 1.75, "dual_discriminator": 1.72,
           "ema_generator": 1.02, "feature_matching": 1.05, "gradient_penalty": 1.40,
           "historical_averaging": 1.24, "instance_noise": 1.05, "label_flip": 1.04,
           "label_smoothing": 1.03, "lr_cyclic": 1.02, "lr_step_decay": 1.03,
           "lr_warmup": 1.03, "minibatch_stddev": 1.22, "one_sided_label_smoothing": 1.01,
           "packing": 1.19,  # at m = 2 (see the sources above)
           "path_length": 1.11, "relativistic": 1.82, "spectral_norm": 1.44, "ttur": 1.01,
           "unrolled": 8.43, "virtual_batch_norm": 2.04, "weight_penalty": 1.06,
           "wgan_gp": 6.88,
           # O(batch^2) per step: ~0.8 s/step at batch 256 (bench/grids/cpu-default.toml)
           "minibatch_discrimination": 120.0},
    "image": {"batch_norm": 1.54, "conditional": 1.20, "dropout": 1.28,
              "dual_discriminator": 1.61, "ema_generator": 0.97, "feature_matching": 0.94,
              "gradient_penalty": 1.39, "historical_averaging": 1.00, "instance_noise": 0.95,
              "label_flip": 1.03, "label_smoothing": 0.98, "lr_cyclic": 1.02,
              "lr_step_decay": 0.98, "lr_warmup": 1.01, "minibatch_discrimination": 2.11,
              "minibatch_stddev": 1.07, "one_sided_label_smoothing": 1.03,
              "packing": 1.30,  # m = 2: 1.28 and 1.33 x (digits 16 px, batch 64, CPU time)
              "path_length": 1.13, "progressive_growing": 9.11, "relativistic": 1.89,
              "self_attention": 1.62, "spectral_norm": 1.03, "stylegan": 5.83, "ttur": 1.05,
              "unrolled": 6.97, "virtual_batch_norm": 1.43, "weight_penalty": 0.94,
              "wgan_gp": 4.91},
}


def _kind(dataset: str) -> str:
    from bench.data import dataset_kind

    return dataset_kind(dataset)


def _scale(kind: str, batch: int, width: int) -> float:
    ref_b, ref_w = REF[kind]
    fixed = FIXED_SHARE[kind]
    return fixed + (1 - fixed) * (batch * width) / (ref_b * ref_w)


def ms_per_step(kind: str, batch: int, width: int, tricks=()) -> float:
    """Estimated ms per step of a cell: the baseline at its batch and width times each trick's
    ratio (a trick not in the table counts 1)."""
    ms = BASE_MS[kind] * _scale(kind, batch, width)
    for name in tricks:
        ms *= RATIO[kind].get(name, 1.0)
    return ms


def estimate_cell_seconds(cell) -> float:
    """Estimated seconds of one cell on one worker: its steps plus the per-cell overhead."""
    kind = _kind(cell.data.name)
    arch = getattr(cell.net, "arch", "")
    if arch in ARCH_MS:
        base, ref_batch = ARCH_MS[arch]
        fixed = FIXED_SHARE[kind]
        ms = base * (fixed + (1 - fixed) * cell.train.batch_size / ref_batch)
        for name in cell.trick_names:
            ms *= RATIO[kind].get(name, 1.0)
    else:
        width = cell.net.resolved_width(kind)
        ms = ms_per_step(kind, cell.train.batch_size, width, cell.trick_names)
    return ms * cell.train.steps / 1000 + CELL_OVERHEAD_S[kind]
