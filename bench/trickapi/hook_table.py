"""The README's hook table (`ganbench tricks --hooks`), generated from the hook rules
(`hooks.py`) and the signatures of `Trick`'s identity defaults. Kept apart from `hooks.py`, which
`trick.py` imports: the table needs `Trick`, the rules must not."""
from __future__ import annotations

import inspect

from bench.trickapi.hooks import HOOK_SPECS
from bench.trickapi.trick import Trick


def signature(name: str) -> str:
    """`build(nets, ctx)`: the hook as a trick overrides it (from `Trick`'s default)."""
    params = list(inspect.signature(getattr(Trick, name)).parameters)[1:]  # without self
    return f"{name}({', '.join(params)})"


def markdown_table() -> str:
    """The README's hook table (`ganbench tricks --hooks`; a test keeps the README in step)."""
    rows = ["| hook | called | returns | combines | claims slot | examples |",
            "|---|---|---|---|---|---|"]
    for h in HOOK_SPECS:
        rows.append(f"| `{signature(h.name)}` | {h.called} | {h.returns} | {h.combine} | "
                    f"{('`' + h.slot + '`') if h.slot else '–'} | {h.examples or '–'} |")
    return "\n".join(rows)
