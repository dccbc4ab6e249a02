"""Budget probe for `pacgan-t1-cpu`: the cost of its cells' steps and scoring, as ratios measured
in one run, so that a loaded machine still gives usable figures.

    PYTHONPATH=<checkout> nice python benchmarks/pacgan_budget.py [--rounds 3] [--steps 150]
                                                                   [--fused-steps 30] [--k 5]

Measures, in interleaved rounds at 1 torch thread, the CPU time of this thread (so time spent
waiting for a core on a shared machine does not count):
- `ref`: the 2-D baseline MLP (ring8, width 128, batch 256), the cell whose idle cost
  bench/schedule/step_costs.py is calibrated on (BASE_MS["2d"], 6.33 ms a step on the idle
  2-core reference machine);
- `m1` and `m2`: the preset's own cells, the GAN (baseline, m = 1) and PacGAN2 (`packing`, m = 2)
  on ring8-pacgan, and `grid-m1` (the GAN on grid25-pacgan: same nets, other data);
- `fusedK`: the K seeds of the preset's baseline as one fused step (bench/train/fused), per
  cell-step (the CPU default trains PacGAN's nets alone: docs/fused.md);
- per cell, outside the steps: one metric-curve point (`curve_probe("2d")`: the mode metrics on
  2,500 samples; a run scores 10 per cell), the final scoring (`evaluate`: EvalSpec() on 2-D =
  the mode metrics on 2,500 samples, plus the stored samples) and one checkpoint write.

Prints per round and the medians: ms a step of each, the ratios to `ref` and to `m1`, and the
scoring costs in ms and in steps of `m1`. Not a cell of any store."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.core.config import CellConfig, DataConfig, NetConfig, OptimConfig, TrainConfig  # noqa: E402
from bench.core.record import Record  # noqa: E402
from bench.data import load_dataset  # noqa: E402
from bench.schedule.grid import load_grid  # noqa: E402
from bench.schedule.runner import curve_probe, evaluate  # noqa: E402
from bench.train import Trainer  # noqa: E402
from bench.train.fused import CellStreams, FusedTrainer  # noqa: E402


def cpu_ms(fn, n: int) -> float:
    """ms of this thread's CPU time per call of fn, over n calls."""
    start = time.thread_time()
    for _ in range(n):
        fn()
    return 1000 * (time.thread_time() - start) / n


def preset_cell(grid, data: str, label: str, seed: int = 0) -> CellConfig:
    return next(c for c in grid.cells
                if c.data.name == data and c.label == label and c.seed == seed)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=150, help="steps a measurement, alone")
    ap.add_argument("--fused-steps", type=int, default=30, help="fused steps a measurement")
    ap.add_argument("--k", type=int, default=5, help="cells in the fused group (the seeds)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    grid = load_grid("pacgan-t1-cpu")
    tmp = Path(tempfile.mkdtemp(prefix="pacgan-budget-"))

    opt = OptimConfig(lr=1e-3)
    ref_cell = CellConfig(data=DataConfig("ring8"), net=NetConfig(z_dim=64, width=128, depth=3),
                          train=TrainConfig(steps=10**6, batch_size=256, g_optim=opt,
                                            d_optim=opt, log_every=50, checkpoint_every=0),
                          seed=0)
    trainers = {
        "ref": Trainer(ref_cell, device="cpu", progress=False),
        "m1": Trainer(preset_cell(grid, "ring8-pacgan", "baseline"), device="cpu",
                      progress=False, workdir=tmp / "m1"),
        "m2": Trainer(preset_cell(grid, "ring8-pacgan", "packing"), device="cpu",
                      progress=False),
        "grid-m1": Trainer(preset_cell(grid, "grid25-pacgan", "baseline"), device="cpu",
                           progress=False),
    }
    (tmp / "m1").mkdir()
    data = load_dataset("ring8-pacgan")
    members, states = [], []
    for s in range(args.k):
        members.append(Trainer(preset_cell(grid, "ring8-pacgan", "baseline", s), device="cpu",
                               progress=False, dataset=data))
        states.append(CellStreams.capture())
    fused = FusedTrainer(members, states, device="cpu")
    for t in trainers.values():  # warm-up
        cpu_ms(t.train_step, 5)
    cpu_ms(fused.train_step, 2)

    probe = curve_probe("2d")
    from bench.metrics import EvalSpec

    spec = EvalSpec()
    rows: dict[str, list[float]] = {}
    print(f"{'round':>5} " + " ".join(f"{n:>9}" for n in
          ("ref", "m1", "m2", "grid-m1", f"fused{args.k}", "curve_pt", "final", "ckpt")),
          flush=True)
    for r in range(args.rounds):
        got = {}
        got["ref"] = cpu_ms(trainers["ref"].train_step, 3 * args.steps)
        for name in ("m1", "m2", "grid-m1"):
            got[name] = cpu_ms(trainers[name].train_step, args.steps)
        got[f"fused{args.k}"] = cpu_ms(fused.train_step, args.fused_steps) / args.k
        t = trainers["m1"]
        got["curve_pt"] = cpu_ms(lambda: probe(t), 3)
        rec = Record(cell_id="probe", variant_id="probe", label="baseline",
                     config=t.cell.to_dict(), status="done")
        got["final"] = cpu_ms(lambda: evaluate(t, spec, rec), 1)
        got["ckpt"] = cpu_ms(t.save_checkpoint, 3)
        for k, v in got.items():
            rows.setdefault(k, []).append(v)
        print(f"{r:>5} " + " ".join(f"{v:>9.2f}" for v in got.values()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"{'med':>5} " + " ".join(f"{v:>9.2f}" for v in med.values()))
    print("\nratios (medians of per-round ratios):")
    for name in ("m1", "m2", "grid-m1", f"fused{args.k}"):
        to_ref = statistics.median(a / b for a, b in zip(rows[name], rows["ref"]))
        to_m1 = statistics.median(a / b for a, b in zip(rows[name], rows["m1"]))
        print(f"  {name:<8} x ref {to_ref:5.2f}   x m1 {to_m1:5.2f}   "
              f"(idle estimate at ref = 6.33 ms: {6.33 * to_ref:5.1f} ms)")
    for name in ("curve_pt", "final", "ckpt"):
        steps = statistics.median(a / b for a, b in zip(rows[name], rows["m1"]))
        print(f"  {name:<8} {med[name]:7.1f} ms = {steps:5.1f} steps of m1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
