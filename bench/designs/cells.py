"""An explicit list of trick sets: `cells = [["spectral_norm", "ttur"], ["wgan_gp"]]`."""
from bench.designs import DesignOptions, DesignResult, Variant

NAME = "cells"
SUMMARY = "an explicit list of trick sets (grid key `cells`)"


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    return DesignResult([Variant(tuple(c)) for c in options.cells])
