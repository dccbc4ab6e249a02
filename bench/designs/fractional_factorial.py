"""A regular two-level fractional factorial 2^(k-p) of resolution >= IV (default) over a longer
list of tricks, built with pyDOE (`fracfact_by_res`): main effects of many tricks from far fewer
runs, none of them aliased with a two-factor interaction.

Factors are lettered a, b, c, ... in trick order. The grid spec records the letters, the
generators (e.g. "e = abc"), the alias structure (pyDOE's `fracfact_aliasing`, one string per
group of effects that cannot be told apart) and, per dataset, the runs that may not be trained
(conflicting or not-applicable tricks: stored as such) and the main effects those missing runs
leave unestimable.
"""
from __future__ import annotations

from itertools import combinations
from string import ascii_lowercase

import numpy as np

from bench.core.config import ConfigError
from bench.designs import DesignOptions, DesignResult, Variant

NAME = "fractional-factorial"
SUMMARY = "regular 2^(k-p) design of resolution >= IV over k tricks (pyDOE), with generators " \
          "and aliases"
MAX_K = 20  # pyDOE's alias analysis stops at 20 factors


def design_matrix(k: int, resolution: int) -> np.ndarray:
    from pydoe import fracfact_by_res

    return np.asarray(fracfact_by_res(k, resolution), dtype=int)


def generators(H: np.ndarray) -> list[str]:
    """Each column as a word over the base columns (the first log2(runs) columns)."""
    base = int(np.log2(len(H)))
    out = []
    for j in range(H.shape[1]):
        if j < base:
            continue
        for size in range(2, base + 1):
            word = next((w for w in combinations(range(base), size)
                         if np.array_equal(np.prod(H[:, list(w)], axis=1), H[:, j])), None)
            if word is not None:
                out.append(f"{ascii_lowercase[j]} = {''.join(ascii_lowercase[i] for i in word)}")
                break
    return out


def unestimable(H: np.ndarray, names: list[str], allowed: list[bool]) -> list[str]:
    """Main effects that the runs left (allowed[i]) cannot estimate: c = e_j must lie in the row
    space of the model matrix [1, main effects] over those runs."""
    X = np.column_stack([np.ones(len(H)), H])[np.asarray(allowed, dtype=bool)]
    if len(X) == 0:
        return list(names)
    rank = np.linalg.matrix_rank(X)
    out = []
    for j, name in enumerate(names):
        c = np.zeros(X.shape[1])
        c[j + 1] = 1
        if np.linalg.matrix_rank(np.vstack([X, c])) > rank:
            out.append(name)
    return out


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    k = len(tricks)
    if not 3 <= k <= MAX_K:
        raise ConfigError(f"design 'fractional-factorial' takes 3 to {MAX_K} tricks, got {k}")
    if options.fraction_resolution < 3:
        raise ConfigError(f"fraction_resolution must be >= 3, got {options.fraction_resolution}")
    from pydoe import fracfact_aliasing

    H = design_matrix(k, options.fraction_resolution)
    out, allowed, excluded = [], [], {}
    for row in H:
        chosen = tuple(t for t, level in zip(tricks, row) if level > 0)
        out.append(Variant(chosen, factors={t: int(level > 0) for t, level in zip(tricks, row)}))
        reasons = options.conflicts(list(chosen)) if chosen else []
        allowed.append(not reasons)
        if reasons:
            excluded["+".join(sorted(chosen))] = "; ".join(reasons)
    aliases, _ = fracfact_aliasing(H)
    spec = {"runs": len(H), "k": k, "p": k - int(np.log2(len(H))),
            "min_resolution": options.fraction_resolution,
            "letters": dict(zip(ascii_lowercase, tricks)), "generators": generators(H),
            "aliases": aliases, "excluded_runs": excluded,
            "unestimable": unestimable(H, tricks, allowed)}
    return DesignResult(out, spec)
