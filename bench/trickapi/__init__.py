"""The trick API: the `Trick` base class and its hooks (`trick.py`, `hooks.py`), the rules that
combine several tricks in one cell (`trickset.py`), the registry that loads and creates tricks
(`registry.py`) and G's baseline losses (`losses.py`). Public spelling: `ganbench`."""
