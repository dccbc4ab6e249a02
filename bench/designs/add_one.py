"""Each trick alone on top of the baseline: what it does by itself."""
from bench.designs import DesignOptions, DesignResult, Variant

NAME = "add-one"
SUMMARY = "baseline + each trick alone (n variants)"


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    return DesignResult([Variant((t,)) for t in tricks])
