"""Installed trick versions without importing the tricks (they import torch, reports must not).

Each trick module is parsed with `ast`: a class body that assigns a string `name` and (optionally)
an int `version` gives {name: version} (no `version` means 1, the Trick default). Built-in tricks
are read from the `tricks` package's files; plug-ins from the source files of the modules named
by the `ganbench.tricks` entry points (found with `importlib.util.find_spec`, which imports only
their parent packages). A plug-in whose source cannot be read is left out: the caller then falls
back to the newest stored version of that trick (see `bench.store.results.load_records`)."""
from __future__ import annotations

import ast
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

ENTRY_POINT_GROUP = "ganbench.tricks"  # same group as bench.trickapi.registry (which imports torch)


def versions_in_source(text: str) -> dict[str, int]:
    """{trick name: version} for every class in `text` that assigns `name = "<str>"`."""
    out: dict[str, int] = {}
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.ClassDef):
            continue
        name, version = None, 1
        for stmt in node.body:
            targets = (stmt.targets if isinstance(stmt, ast.Assign) else
                       [stmt.target] if isinstance(stmt, ast.AnnAssign) and stmt.value else [])
            for target in targets:
                if not isinstance(target, ast.Name) or not isinstance(stmt.value, ast.Constant):
                    continue
                if target.id == "name" and isinstance(stmt.value.value, str):
                    name = stmt.value.value
                elif target.id == "version" and isinstance(stmt.value.value, int):
                    version = stmt.value.value
        if name:
            out[name] = version
    return out


def _module_file(module: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def installed_trick_versions() -> dict[str, int]:
    """{trick name: installed version} for built-in and entry-point tricks, read from source."""
    out: dict[str, int] = {}
    builtin = _module_file("tricks")
    if builtin is not None:
        for path in sorted(builtin.parent.glob("*.py")):
            if not path.name.startswith("_"):
                out.update(versions_in_source(path.read_text()))
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        path = _module_file(ep.value.split(":")[0])
        if path is not None:
            try:
                found = versions_in_source(path.read_text())
            except (OSError, SyntaxError):
                continue
            out.update({k: v for k, v in found.items() if k not in out})
    return out
