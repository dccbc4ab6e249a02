"""Process-level runtime: device choice, seeding, RNG state capture/restore, version stamps."""
from __future__ import annotations

import os
import platform
import random
import re
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import numpy as np
import torch

from bench.core.config import DEVICE_CHOICES, ConfigError

# Deterministic cuBLAS needs this set before CUDA initialises; harmless on CPU.
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def pick_device(name: str | None = None, *, here: bool = True) -> torch.device:
    """CUDA when present (or when asked for), else CPU. An unknown device, or CUDA asked for
    without one, is a ConfigError (one line). `here=False`: check the name only (the device is
    another machine's, e.g. a Ray cluster's)."""
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(name, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise ConfigError(f"device {name!r} is not supported (choices: {', '.join(DEVICE_CHOICES)})")
    dev = torch.device(name)
    if dev.type == "cuda" and here:
        if not torch.cuda.is_available():
            raise ConfigError(f"device '{name}' was requested but no CUDA device is available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device '{name}' was requested but only "
                              f"{torch.cuda.device_count()} CUDA device(s) are visible")
    return dev


def seed_everything(seed: int, device: torch.device) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    # CPU kernels are deterministic outright; on CUDA a few ops have no deterministic
    # version, so warn there instead of crashing a long run.
    torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")


_NONDETERMINISTIC = " does not have a deterministic implementation"


@contextmanager
def watch_nondeterminism(found: set[str]) -> Iterator[None]:
    """Collect into `found` the ops torch warns about as nondeterministic (on CUDA, where
    `seed_everything` sets warn_only): such a cell is reproducible only up to those kernels.
    Every other warning is passed on (once per message and place) when the block ends."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            others = {}
            for w in caught:
                text = str(w.message)
                if _NONDETERMINISTIC in text:
                    found.add(text.split(_NONDETERMINISTIC)[0].strip())
                else:
                    others.setdefault((w.category, text, w.filename, w.lineno), w)
    for w in others.values():
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def determinism(found: set[str]) -> dict[str, Any]:
    """For a record's `runtime`: whether deterministic algorithms were enforced (CPU) or only
    warned about (CUDA), and which ops warned while the cell trained in this process."""
    return {"deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
            "nondeterministic_ops": sorted(found)}


def rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG the loop draws from, as tensors and plain values (checkpoints load with
    weights_only=True). The CPU state is always a CPU tensor; CUDA's is kept apart."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": {"version": version, "state": torch.tensor(internal, dtype=torch.int64),
                        "gauss": gauss},
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached": float(cached)},
             "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    """Restore `rng_state`; state tensors may be on any device (they are moved to the CPU,
    where torch's set_rng_state APIs require them)."""
    py = state["python"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].cpu().numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached"]))
    torch.set_rng_state(state["torch"].cpu())
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"].cpu(), device)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "torch": torch.__version__,
           "numpy": np.__version__}
    for pkg in ("ganbench", "torch-fidelity"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


_NUMERICS: dict[tuple, dict[str, str]] = {}


def numerics(device: torch.device | str = "cpu") -> dict[str, str]:
    """What decides the bits a cell computes beyond its config and package versions, for a
    record's `runtime.numerics`: the CPU's model and the kernel set torch dispatches to
    (`cpu_capability`: AVX512, AVX2...), the GPU's name on CUDA, and `fingerprint`, a hash of
    the exact output of a small fixed MLP + conv/deconv forward and backward pass run here, with
    this process's thread count. Two machines with one fingerprint compute these kernels
    identically; another fingerprint means a rerun there need not be bit-identical (the ring8
    MLP cells of results/previous-default reproduce across machines, the digits DCGAN cells do not).
    Computed once per (device, threads) and process (a few ms on the CPU)."""
    import hashlib

    device = torch.device(device)
    key = (str(device), torch.get_num_threads())
    if key in _NUMERICS:
        return dict(_NUMERICS[key])
    out = {"cpu_capability": str(getattr(torch.backends.cpu, "get_cpu_capability",
                                         lambda: "unknown")()),
           "cpu": _cpu_model()}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    g = torch.Generator(device="cpu").manual_seed(1234)
    x = torch.randn(8, 1, 16, 16, generator=g).to(device)
    w1 = torch.randn(16, 1, 4, 4, generator=g).to(device).requires_grad_()
    w2 = torch.randn(16, 1, 4, 4, generator=g).to(device).requires_grad_()
    w3 = torch.randn(256, 64, generator=g).to(device).requires_grad_()
    h = torch.nn.functional.leaky_relu(torch.nn.functional.conv2d(x, w1, stride=2, padding=1), 0.2)
    y = torch.nn.functional.conv_transpose2d(h, w2, stride=2, padding=1)
    z = torch.tanh(y.reshape(8, 256) @ w3).sum()
    z.backward()
    digest = hashlib.sha256()
    for t in (y, w1.grad, w2.grad, w3.grad):
        digest.update(t.detach().to("cpu", torch.float64).numpy().tobytes())
    out["fingerprint"] = digest.hexdigest()[:16]
    _NUMERICS[key] = out
    return dict(out)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
