"""Density and coverage (Naeem et al. 2020) via the ``prdc`` package, on given features."""
from __future__ import annotations

import contextlib
import io

import numpy as np

DC_NEAREST_K = 5


def dc_nearest_k(n_real: int, n_fake: int, k: int = DC_NEAREST_K) -> int:
    """k, reduced for tiny sets (prdc needs k + 1 < set size)."""
    return max(1, min(k, min(n_real, n_fake) - 2))


def density_coverage(real: np.ndarray, fake: np.ndarray, nearest_k: int = DC_NEAREST_K) -> dict:
    """{"density", "coverage"} of ``fake`` w.r.t. ``real`` with k nearest neighbours (prdc.compute_prdc)."""
    import joblib
    import prdc

    real = np.ascontiguousarray(real, dtype=np.float32)
    fake = np.ascontiguousarray(fake, dtype=np.float32)
    # prdc asks sklearn for n_jobs=8: on a small CPU the thread pool costs more than it saves
    with contextlib.redirect_stdout(io.StringIO()), joblib.parallel_config(backend="sequential"):
        out = prdc.compute_prdc(real_features=real, fake_features=fake, nearest_k=nearest_k)
    return {"density": float(out["density"]), "coverage": float(out["coverage"])}


def prdc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prdc")
    except PackageNotFoundError:
        return "unknown"
