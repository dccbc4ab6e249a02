"""The package layout is the architecture: grid file -> cells -> train(cell) -> Record -> store ->
tables. These tests read every import of `bench/` and `tricks/` with `ast` (module level and inside
functions, `TYPE_CHECKING` blocks included) and fail on an import cycle between modules or on an
import that points up the layers."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "tricks")

# package -> the packages it may import (besides itself). Layers, bottom up: core; the trick
# API, data, nets and metrics; the store; training; the grid designs and scheduling; reports;
# the CLI. `tricks` (the built-in plug-ins) sees what a third-party plug-in sees, plus nets.
ALLOWED = {
    "bench": set(),  # bench/__init__.py is empty
    "bench.core": set(),
    "bench.trickapi": {"bench.core"},
    "bench.data": {"bench.core"},
    "bench.nets": {"bench.core", "bench.trickapi"},
    "bench.metrics": {"bench.core", "bench.data"},
    "bench.store": {"bench.core"},
    "bench.train": {"bench.core", "bench.trickapi", "bench.data", "bench.nets", "bench.metrics",
                    "bench.store"},
    "bench.designs": {"bench.core"},
    "bench.schedule": {"bench.core", "bench.trickapi", "bench.data", "bench.nets",
                       "bench.metrics", "bench.store", "bench.train", "bench.designs"},
    "bench.report": {"bench.core", "bench.store"},
    "bench.cli": {"bench.core", "bench.trickapi", "bench.data", "bench.nets", "bench.metrics",
                  "bench.store", "bench.train", "bench.designs", "bench.schedule",
                  "bench.report"},
    "tricks": {"bench.core", "bench.trickapi", "bench.nets", "bench.data"},
}
# Packages a torch-free command path runs through: none of their modules imports torch at module
# level (a lazily imported piece inside a function is fine; a subprocess test checks the commands).
TORCH_FREE = ("bench.core", "bench.store", "bench.report", "bench.designs")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported module, line, at module level) for every import in the file; `from a import b`
    names module a.b where that is a module, else a. Relative imports are resolved."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top_level = {id(n) for n in _module_level(tree.body)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        else:
            continue
        for target in targets:
            out.append((target, node.lineno, id(node) in top_level))
    return out


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """Statements that run on import: the body, and inside if/try/with blocks (not functions)."""
    out = []
    for stmt in body:
        out.append(stmt)
        for field in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, field, None)
            if isinstance(inner, list) and not isinstance(stmt, (ast.FunctionDef,
                                                                ast.AsyncFunctionDef,
                                                                ast.ClassDef)):
                out.extend(_module_level([s for s in inner if isinstance(s, ast.stmt)]
                                         + [s for h in inner if isinstance(h, ast.excepthandler)
                                            for s in h.body]))
    return out


def graph() -> dict[str, dict[str, tuple[int, bool]]]:
    """module -> {imported module of bench/tricks: (line, module level)}. Importing a.b.c also
    runs a and a.b, so a package's `__init__` is an edge too."""
    mods = modules()
    known = set(mods)
    edges: dict[str, dict[str, tuple[int, bool]]] = {m: {} for m in mods}
    for name, path in mods.items():
        for target, line, top in imports_of(name, path, known):
            if target.split(".")[0] not in PACKAGES:
                continue
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                dep = ".".join(parts[:i])
                if dep not in known or dep == name:
                    continue
                # the module named, and the packages above it that the import runs; not the
                # importer's own parents (already running) nor the empty `bench/__init__.py`,
                # unless named
                implicit = name.startswith(dep + ".") or dep == "bench"
                if i == len(parts) or not implicit:
                    edges[name].setdefault(dep, (line, top))
    return edges


def find_cycle(edges: dict[str, dict[str, tuple[int, bool]]]) -> list[str] | None:
    """One import cycle as [a, b, ..., a], or None (iterative DFS)."""
    color: dict[str, int] = {}
    for start in sorted(edges):
        if color.get(start):
            continue
        stack = [(start, iter(sorted(edges[start])))]
        path = [start]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                path.pop()
            elif color.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not color.get(nxt):
                color[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(sorted(edges.get(nxt, {})))))
    return None


def layer_of(module: str) -> str:
    if module.startswith("tricks"):
        return "tricks"
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else "bench"


def test_no_import_cycles():
    edges = graph()
    cycle = find_cycle(edges)
    if cycle:
        steps = [f"{a} (line {edges[a][b][0]}) -> {b}" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("import cycle:\n  " + "\n  ".join(steps))


def test_imports_point_down_the_layers():
    bad = []
    for module, deps in sorted(graph().items()):
        layer = layer_of(module)
        if layer not in ALLOWED:
            bad.append(f"{module}: package {layer} has no layer in ALLOWED (add it there)")
            continue
        for dep, (line, _) in sorted(deps.items()):
            target = layer_of(dep)
            if target != layer and target not in ALLOWED[layer]:
                bad.append(f"{module} (line {line}) imports {dep}: {layer} may not import {target}")
    assert not bad, "\n".join(bad)


def test_torch_free_layers_import_torch_only_inside_functions():
    mods = modules()
    bad = []
    for name, path in mods.items():
        if layer_of(name) in TORCH_FREE:
            for target, line, top in imports_of(name, path, set(mods)):
                if top and target.split(".")[0] in ("torch", "torchvision", "torch_fidelity"):
                    bad.append(f"{name} (line {line}) imports {target} at module level")
    assert not bad, "\n".join(bad)


def test_the_graph_sees_function_level_imports_and_reports_a_cycle():
    """The checker itself: a cycle closed by an import inside a function is still a cycle."""
    edges = {"bench.a": {"bench.b": (3, True)}, "bench.b": {"bench.a": (9, False)}}
    assert find_cycle(edges) == ["bench.a", "bench.b", "bench.a"]
    source = "import os\n\ndef f():\n    from bench.core import config\n"
    path = ROOT / "tests" / "_architecture_probe.py"
    try:
        path.write_text(source)
        found = imports_of("tests._architecture_probe", path, {"bench.core.config"})
    finally:
        path.unlink()
    assert ("bench.core.config", 4, False) in found


def test_the_tricks_shared_helpers_are_no_trick_modules():
    """tricks/_lib holds helpers: the loader skips it and nothing in it registers a trick."""
    from bench.trickapi.registry import get_trick_class, list_tricks

    assert (ROOT / "tricks" / "_lib" / "__init__.py").exists()
    modules_of_tricks = {get_trick_class(n).__module__ for n in list_tricks()}
    assert modules_of_tricks and not any(m.startswith("tricks._lib") for m in modules_of_tricks)
    for path in (ROOT / "tricks" / "_lib").glob("*.py"):
        assert "@register_trick" not in path.read_text(), path.name
    assert not [p.name for p in (ROOT / "tricks").glob("_*.py") if p.name != "__init__.py"]
