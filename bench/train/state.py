"""What a checkpoint holds, and restoring it on any device.

Everything is a tensor or a plain value (checkpoints load with weights_only=True) and loads onto
the CPU: nets and optimizer states are copied onto the cell's device by `load_state_dict`, trick
state is moved there by the TrickSet, and each RNG state goes back to its own generator.
"""
from __future__ import annotations

from typing import Any, Protocol

from bench.train.checkpoint import CheckpointError
from bench.train.runtime import rng_state, set_rng_state

FORMAT = 2  # bump when the layout changes; an older checkpoint restarts the cell
KEYS = ("format", "cell_id", "step", "G", "D", "g_opt", "d_opt", "tricks", "stream", "rng",
        "log", "train_seconds", "probe_seconds")


class Trainable(Protocol):
    """What a checkpoint saves and restores of a `Trainer` (trainer.py imports this module, so
    the state is described by the attributes it reads rather than by importing the class)."""
    cell: Any
    step: int
    nets: Any  # Nets(G, D)
    g_opt: Any
    d_opt: Any
    tricks: Any  # the cell's TrickSet
    stream: Any  # BatchStream
    device: Any
    log: Any  # LossLog
    train_seconds: float
    probe_seconds: float
    nondeterministic_ops: set[str]


def trainer_state(tr: Trainable) -> dict[str, Any]:
    return {
        "format": FORMAT, "cell_id": tr.cell.cell_id, "step": tr.step,
        "G": tr.nets.G.state_dict(), "D": tr.nets.D.state_dict(),
        "g_opt": tr.g_opt.state_dict(), "d_opt": tr.d_opt.state_dict(),
        "tricks": tr.tricks.state_dict(), "stream": tr.stream.state_dict(),
        "rng": rng_state(tr.device), "log": tr.log.state_dict(),
        "train_seconds": tr.train_seconds, "probe_seconds": tr.probe_seconds,
        # optional (older checkpoints lack it): CUDA ops that warned before the checkpoint, so
        # the record of a resumed cell names those of every process that trained it
        "nondeterministic_ops": sorted(tr.nondeterministic_ops),
    }


def check_state(state: dict[str, Any], cell_id: str, where: str) -> None:
    """A checkpoint of this cell in the current layout, else CheckpointError naming `where`."""
    missing = [k for k in KEYS if k not in state]
    if missing or state.get("format") != FORMAT:
        raise CheckpointError(f"cannot read checkpoint {where}: not a ganbench checkpoint of "
                              f"format {FORMAT}")
    if state["cell_id"] != cell_id:
        raise CheckpointError(f"checkpoint {where} belongs to cell {state['cell_id']}, "
                              f"not {cell_id}")


def load_trainer_state(tr: Trainable, state: dict[str, Any]) -> None:
    tr.step = int(state["step"])
    tr.nets.G.load_state_dict(state["G"])
    tr.nets.D.load_state_dict(state["D"])
    tr.g_opt.load_state_dict(state["g_opt"])  # optimizer state follows its params' device
    tr.d_opt.load_state_dict(state["d_opt"])
    tr.tricks.load_state_dict(state["tricks"], tr.device)
    tr.stream.load_state_dict(state["stream"])
    # step-derived trick state as the last completed step left it (sampling after a resume
    # or re-scoring must see the nets as training ended); train_step sets the next one
    tr.tricks.on_step(max(tr.step - 1, 0))
    set_rng_state(state["rng"], tr.device)
    tr.log.load_state_dict(state["log"])
    tr.train_seconds = float(state["train_seconds"])
    tr.probe_seconds = float(state["probe_seconds"])
    tr.nondeterministic_ops.update(str(op) for op in state.get("nondeterministic_ops", ()))
