"""Budget probe for pacgan-t1-cpu: one cell of the preset's setup (PacGAN's nets, Adam(1e-4,
beta1 0.8), batch 100) trained alone, scored every EVERY steps on 2,500 samples (eval seed 0).

    PYTHONPATH=<checkout> python probe.py DATASET M STEPS [EVERY]

prints: step, seconds since start, the mode metrics, D's last logged adversarial loss.
(Not a cell of any store: a diagnosis script, run beside the preset on the shared machine.)"""
import time, torch, sys
from bench.core.config import *
from bench.schedule.grid import full_spec
from bench.train import Trainer
from bench.metrics.modes2d import mode_coverage_2d
torch.set_num_threads(1)
ds, m, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tricks = (full_spec("packing", {"m": m}),) if m > 1 else ()
opt = OptimConfig(lr=1e-4, beta1=0.8)
cell = CellConfig(data=DataConfig(ds), net=NetConfig(z_dim=2, arch="pacgan"),
                  train=TrainConfig(steps=steps, batch_size=100, g_optim=opt, d_optim=opt, log_every=100, checkpoint_every=0),
                  tricks=tricks, seed=0)
tr = Trainer(cell, device="cpu", progress=False)
t0 = time.time()
def probe(t):
    g = torch.Generator().manual_seed(0)
    x = t.sample(2500, g)
    r = mode_coverage_2d(x, t.data)
    d = t.curves["d_adv"][-1][1] if t.curves.get("d_adv") else None
    print(t.step, round(time.time() - t0), r, "d_adv", d, flush=True)
    return {k: float(v) for k, v in r.items()}
tr.set_probe(probe, int(sys.argv[4]) if len(sys.argv) > 4 else 500)
print(tr.train())
probe(tr)
