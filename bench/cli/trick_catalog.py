"""What `ganbench tricks` lists, without importing torch: the registry's descriptions of every
trick (and the pairwise compatibility matrix), cached under a fingerprint of the sources they
come from: every file of the `tricks` package, `bench/trickapi/` and `bench/core/` (the rules),
and the `ganbench.tricks` entry points' modules (a package: all its files). A changed, added or
removed file, or a plug-in installed or removed, changes the fingerprint, and the first
`ganbench tricks` after it imports the tricks (and torch) once to write the new entry.

Cache: `<cache>/tricks/<fingerprint>.json` (<cache>: $GANBENCH_CACHE, else ~/.cache/ganbench, as
the metrics' cache). An unwritable cache only costs the speed."""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

CATALOG_VERSION = 1
ENTRY_POINT_GROUP = "ganbench.tricks"


def cache_root() -> Path:
    return Path(os.environ.get("GANBENCH_CACHE") or Path.home() / ".cache" / "ganbench") / "tricks"


def _origin(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return Path(spec.origin) if spec is not None and spec.origin else None


def source_files() -> tuple[list[Path], list[str]]:
    """(the files the descriptions come from, the entry points as 'name=value')."""
    files: list[Path] = []
    for package in ("tricks", "bench.trickapi", "bench.core"):
        origin = _origin(package)
        if origin is not None:
            files += sorted(origin.parent.rglob("*.py"))
    eps = sorted(f"{ep.name}={ep.value}" for ep in entry_points(group=ENTRY_POINT_GROUP))
    for ep in eps:
        origin = _origin(ep.split("=", 1)[1].split(":")[0])
        if origin is None:
            continue
        files += sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
    return files, eps


def fingerprint() -> str:
    files, eps = source_files()
    h = hashlib.sha256(f"v{CATALOG_VERSION}\n".encode())
    for ep in eps:
        h.update(f"ep {ep}\n".encode())
    for path in files:
        try:
            st = path.stat()
        except OSError:
            continue
        h.update(f"{path}\0{st.st_mtime_ns}\0{st.st_size}\n".encode())
    return h.hexdigest()[:20]


def build() -> dict[str, Any]:
    """Import the registry (and torch) and describe every trick."""
    from bench.trickapi.registry import (conflict_reasons, create_trick, describe, list_tricks,
                                         plugin_errors)
    from bench.trickapi.trick import TRAITS

    names = list_tricks()
    tricks = {n: create_trick(n) for n in names}
    return {"version": CATALOG_VERSION, "names": names,
            "infos": {n: describe(n) for n in names},
            "matrix": {a: {b: conflict_reasons([tricks[a], tricks[b]]) if a != b else []
                           for b in names} for a in names},
            "traits": dict(TRAITS), "plugin_errors": plugin_errors()}


def load(use_cache: bool = True) -> tuple[dict[str, Any], bool]:
    """(the catalog, whether it came from the cache). A miss builds it and writes it. A process
    that has the registry loaded already (tricks registered in code, a test) describes what it
    holds, and caches nothing: its registry need not be what the files say."""
    import sys

    if "bench.trickapi.registry" in sys.modules:
        return json.loads(json.dumps(build(), default=str)), False
    path = cache_root() / f"{fingerprint()}.json"
    if use_cache:
        try:
            data = json.loads(path.read_text())
            if data.get("version") == CATALOG_VERSION:
                return data, True
        except (OSError, ValueError):
            pass
    data = json.loads(json.dumps(build(), default=str))  # as a hit would read it back
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError:
        pass
    return data, False
