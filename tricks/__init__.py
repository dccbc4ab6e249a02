"""Built-in tricks, one module each. Importing this package registers nothing by itself:
`bench.trickapi.registry.load_tricks()` imports every module here (not `_lib`, the tricks' shared
helpers) and every `ganbench.tricks` plug-in.

The names a trick author needs are re-exported here."""
from bench.trickapi.registry import (conflict_reasons, create_trick, describe, list_tricks,
                                     register_trick)
from bench.trickapi.trick import (INSERT, REPARAMETRIZE, REPLACE, WRAP, BuildContext, Nets,
                                  StepContext, Trick, TrickError)

__all__ = [
    "Trick", "TrickError", "Nets", "BuildContext", "StepContext", "register_trick",
    "create_trick", "list_tricks", "conflict_reasons", "describe",
    "REPLACE", "INSERT", "REPARAMETRIZE", "WRAP",
]
