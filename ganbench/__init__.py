"""ganbench's public plug-in API: everything a third-party trick needs, from one module.

    from ganbench import Trick, register_trick, Nets, StepContext

    @register_trick
    class MyTrick(Trick):
        name = "my_trick"
        ...

Register the module under the entry-point group `ganbench.tricks` (see docs/writing-a-trick.md). The older
spelling `from tricks import Trick, register_trick` keeps working.

Results (imported when first used, as they need pandas):

    from ganbench import load_records
    df = load_records("runs/default")       # one row per cell; grids / designs columns
    rows = load_records("runs/default", memberships=True)  # one row per grid membership

`load_table` (the per-membership table and what the grids asked for) and `write_report` are
what `ganbench report` uses.
"""
from typing import Any

from bench.core.config import NetConfig, OptimConfig
from bench.trickapi.registry import (conflict_reasons, create_trick, describe, list_tricks,
                                     plugin_errors, register_trick)
from bench.trickapi.trick import (INSERT, REPARAMETRIZE, REPLACE, SLOTS, WRAP, BuildContext, Nets,
                                  NoParams, StepContext, Trick, TrickError)

__version__ = "0.1.0"

__all__ = [
    "__version__", "Trick", "TrickError", "register_trick", "Nets", "BuildContext",
    "StepContext", "NoParams", "OptimConfig", "NetConfig", "SLOTS",
    "REPLACE", "INSERT", "REPARAMETRIZE", "WRAP",
    "create_trick", "list_tricks", "conflict_reasons", "describe", "plugin_errors",
    "load_records", "load_table", "write_report",
]

_LAZY = {"load_records": "bench.store.results", "load_table": "bench.store.results",
         "write_report": "bench.report.build"}


def __getattr__(name: str) -> Any:
    # pandas only for those who read results: a plug-in trick imports this module in every
    # training worker
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
