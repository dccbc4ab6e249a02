"""Training one cell. The loop knows hooks, never a trick: every change a trick makes comes back
as the return value of a hook, combined by the cell's `TrickSet` (bench/trickapi/trickset.py).

- `parts.py`: a cell's nets, optimizers and tricks, built once;
- `trainer.py`: the step and the run (checkpoints, probes, divergence);
- `losslog.py`: loss curves averaged over `log_every` steps;
- `state.py`: what a checkpoint holds and how it is restored on any device.
"""
from bench.train.trainer import CHECKPOINT, Diverged, Trainer

__all__ = ["Trainer", "Diverged", "CHECKPOINT"]
