"""ganbench's public plug-in API: everything a third-party trick needs, from one module.

    from ganbench import Trick, register_trick, Nets, StepContext

    @register_trick
    class MyTrick(Trick):
        name = "my_trick"
        ...

Register the module under the entry-point group `ganbench.tricks` (see the README). The older
spelling `from tricks import Trick, register_trick` keeps working.

Results: `ganbench.load_records(store)` is `bench.store.results.load_records`, the table the
reports read (one row per record; imported when first used, as it needs pandas).
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
    "load_records",
]


def __getattr__(name: str) -> Any:
    # pandas only for those who read results: a plug-in trick imports this module in every
    # training worker
    if name == "load_records":
        from bench.store.results import load_records

        return load_records
    raise AttributeError(f"module 'ganbench' has no attribute {name!r}")
