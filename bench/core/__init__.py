"""The foundation every other layer imports, and which imports none of them (torch-free):
cell and grid configs and their ids (`config.py`), what a finished cell records (`record.py`,
`flags.py`), metric directions, where grid files live, a cell's setup (`setups.py`) and the
installed trick versions read from source (`trick_versions.py`)."""
