"""The baseline only: no trick."""
from bench.designs import DesignOptions, DesignResult

NAME = "baseline"
SUMMARY = "the baseline alone (no trick)"


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    return DesignResult([])
