"""All compatible tricks together, then the full set minus each one: what each trick adds on
top of all the others.

Where the listed tricks cannot all run together, the full set is chosen by a deterministic
rule: go through the tricks in grid order (the order of `tricks`, patterns expanded
alphabetically) and keep a trick when the set kept so far plus it has no conflict (and it applies
to the data kind); otherwise drop it, with the reason. The resolution is printed by
`ganbench run --dry-run` and stored in the grid spec (`spec["resolution"]`).
"""
from bench.designs import DesignOptions, DesignResult, Variant

NAME = "leave-one-out"
SUMMARY = "all compatible tricks, then all minus each one (n+1 variants; conflicts resolved " \
          "in grid order, first kept)"


def resolve(tricks: list[str], options: DesignOptions) -> tuple[list[str], dict[str, str]]:
    kept: list[str] = []
    dropped: dict[str, str] = {}
    for t in tricks:
        reasons = options.conflicts(kept + [t])
        if reasons:
            dropped[t] = "; ".join(reasons)
        else:
            kept.append(t)
    return kept, dropped


def variants(tricks: list[str], options: DesignOptions) -> DesignResult:
    kept, dropped = resolve(tricks, options)
    out = [Variant(tuple(kept), "all")]
    if len(kept) > 1:
        out += [Variant(tuple(k for k in kept if k != t)) for t in kept]
    return DesignResult(out, {"resolution": {"rule": "grid order, first kept", "kept": kept,
                                             "dropped": dropped}})
