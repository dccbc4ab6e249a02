"""Where a grid's TOML lives: a preset name (shipped in `bench/grids/`) or a path. Torch-free, so
the report (which must run without torch) names grids the way `run` does."""
from __future__ import annotations

from pathlib import Path

from bench.core.config import ConfigError

GRID_DIR = Path(__file__).resolve().parents[1] / "grids"  # presets ship inside the package


def resolve_grid_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    candidate = GRID_DIR / f"{name_or_path}.toml"
    # a preset name wins over a same-named folder in the working directory; a file is a grid file
    if path.suffix == ".toml" or path.is_file() or (path.exists() and not candidate.is_file()):
        if not path.is_file():
            raise ConfigError(f"grid file not found: {path}")
        return path
    if not candidate.is_file():
        import difflib

        presets = sorted(p.stem for p in GRID_DIR.glob("*.toml"))
        close = difflib.get_close_matches(name_or_path, presets, n=2, cutoff=0.6)
        hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise ConfigError(f"unknown grid '{name_or_path}' ({hint}presets: {', '.join(presets)}; "
                          f"or give a .toml path)")
    return candidate
