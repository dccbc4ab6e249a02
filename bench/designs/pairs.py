"""Every pair of tricks (C(n, 2) variants), for interactions: Δ(a+b) − Δ(a) − Δ(b) needs the
single tricks too, so combine it with add-one. A pair that may not run together is stored as
`conflict` with its reason."""
from itertools import combinations

from bench.designs import DesignOptions, DesignResult, Variant

NAME = "pairs"
SUMMARY = "every pair of tricks (C(n,2) variants; conflicting pairs stored as conflict)"


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    return DesignResult([Variant(pair) for pair in combinations(tricks, 2)])
