"""ganbench's public plug-in API: everything a third-party trick needs, from one module.

    from ganbench import Trick, register_trick, Nets, StepContext

    @register_trick
    class MyTrick(Trick):
        name = "my_trick"
        ...

Register the module under the entry-point group `ganbench.tricks` (see the README). The older
spelling `from tricks import Trick, register_trick` keeps working.
"""
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
]
