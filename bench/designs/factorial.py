"""Full 2^k factorial over a short list (k <= 6): every subset of the tricks, with each run's
factor levels, so main effects and all interactions can be estimated."""
from itertools import product

from bench.core.config import ConfigError
from bench.designs import DesignOptions, DesignResult, Variant

NAME = "factorial"
SUMMARY = "full 2^k factorial over k <= 6 tricks (every subset)"
MAX_K = 6


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    if not 1 <= len(tricks) <= MAX_K:
        raise ConfigError(f"design 'factorial' takes 1 to {MAX_K} tricks, got {len(tricks)} "
                          f"(use 'fractional-factorial' for more)")
    out = []
    for levels in product((0, 1), repeat=len(tricks)):
        chosen = tuple(t for t, on in zip(tricks, levels) if on)
        out.append(Variant(chosen, factors=dict(zip(tricks, levels))))
    return DesignResult(out)
