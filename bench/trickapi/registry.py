"""Trick registry: register by name, list with wildcards, create with typed params, explain conflicts.

Built-in tricks live in the `tricks` package; third-party tricks register through the entry-point
group `ganbench.tricks` (the entry point names a module or a Trick class). `load_tricks()` is the
only place that imports concrete tricks.
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import importlib
import inspect
import pkgutil
import sys
import types
import typing
from importlib.metadata import entry_points
from typing import Any, Iterable, Sequence

from bench.core.config import ARCH_SLOTS
from bench.trickapi.trick import HOOKS, SLOTS, TRAITS, Trick, TrickError, slots_of

ENTRY_POINT_GROUP = "ganbench.tricks"
BUILTIN_PACKAGE = "tricks"  # one module per built-in trick
_REGISTRY: dict[str, type[Trick]] = {}
_loaded = False
_PLUGIN_ERRORS: list[str] = []  # one line per plug-in that could not be loaded
_warn_plugins = True  # off in grid workers: the parent process already said it once


def register_trick(cls: type[Trick]) -> type[Trick]:
    """Class decorator. Validates the declaration; a duplicate name is an error, not a warning."""
    if not (isinstance(cls, type) and issubclass(cls, Trick)):
        raise TrickError(f"@register_trick needs a Trick subclass, got {cls!r}")
    name = cls.name
    if not name or not isinstance(name, str):
        raise TrickError(f"trick class {cls.__qualname__} has no `name`")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        other = _REGISTRY[name]
        raise TrickError(f"trick name '{name}' is already registered by "
                         f"{other.__module__}.{other.__qualname__}")
    for attr, value in vars(cls).items():
        # A public method that looks like a hook but is not one is a typo (e.g. `d_inputs`).
        if inspect.isfunction(value) and not attr.startswith("_") and attr not in HOOKS:
            close = difflib.get_close_matches(attr, HOOKS, n=1, cutoff=0.75)
            if close:
                raise TrickError(f"trick '{name}' defines '{attr}', which is not a hook; "
                                 f"did you mean '{close[0]}'?")
    for attr, value in vars(cls).items():
        # An overridden hook must accept what the loop passes (a missing argument would be a
        # raw TypeError in the middle of training).
        if attr in HOOKS and inspect.isfunction(value):
            _check_hook_signature(name, attr, value)
    for attr in ("excludes", "requires"):
        decl = getattr(cls, attr)
        if not (isinstance(decl, typing.Mapping)
                and all(isinstance(k, str) and isinstance(v, str) for k, v in decl.items())):
            raise TrickError(f"trick '{name}': {attr} must map trick names to one-line reasons, "
                             f"e.g. {{'other_trick': 'why'}}, got {decl!r}")
    if not isinstance(cls.version, int) or isinstance(cls.version, bool) or cls.version < 1:
        raise TrickError(f"trick '{name}': version must be an integer >= 1")
    if not dataclasses.is_dataclass(cls.Params):
        raise TrickError(f"trick '{name}': Params must be a dataclass")
    for slot in cls.slots:
        if slot not in SLOTS:
            raise TrickError(f"trick '{name}' claims unknown slot '{slot}' (known: {', '.join(SLOTS)})")
    if not cls.applies_to or not set(cls.applies_to) <= {"2d", "image"}:
        raise TrickError(f"trick '{name}': applies_to must be a non-empty subset of {{'2d', 'image'}}")
    if not set(cls.needs) <= set(TRAITS):
        raise TrickError(f"trick '{name}': needs must be a subset of {{{', '.join(map(repr, TRAITS))}}}")
    _REGISTRY[name] = cls
    return cls


def _check_hook_signature(name: str, hook: str, fn: Any) -> None:
    expected = inspect.signature(getattr(Trick, hook))
    try:
        expected.bind(*expected.parameters)  # self plus the loop's positional arguments
        inspect.signature(fn).bind(*expected.parameters)
    except TypeError:
        wanted = ", ".join(expected.parameters)
        raise TrickError(f"trick '{name}' hook '{hook}' must accept ({wanted}); it is defined as "
                         f"{hook}{inspect.signature(fn)}") from None


def unregister_trick(name: str) -> None:
    """For tests and interactive use."""
    _REGISTRY.pop(name, None)


def load_tricks() -> None:
    """Import every module of the built-in `tricks` package and every entry-point plug-in, once.
    A plug-in that fails is reported in one line (stderr, and `plugin_errors()`); every other
    trick still works. A broken built-in trick is the suite's own bug and raises."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    _PLUGIN_ERRORS.clear()
    # The built-in tricks are plug-ins found by name, like the entry points below: the registry
    # is what they import (`register_trick`), so it must not import them by a static import.
    builtin = importlib.import_module(BUILTIN_PACKAGE)
    for mod in sorted(pkgutil.iter_modules(builtin.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):  # _lib: the tricks' shared helpers, not a trick
            importlib.import_module(f"{BUILTIN_PACKAGE}.{mod.name}")
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        problem = _load_plugin(ep)
        if problem:
            _PLUGIN_ERRORS.append(problem)
            if _warn_plugins:
                print(f"ganbench: warning: {problem}", file=sys.stderr)


def quiet_plugin_warnings() -> None:
    """Grid workers load the plug-ins again; their warnings would repeat the parent's once per
    worker (the errors are still in `plugin_errors()`)."""
    global _warn_plugins
    _warn_plugins = False


def _load_plugin(ep: Any) -> str | None:
    """Load one entry point; the reason it contributed no trick, or None when it did."""
    where = f"trick plug-in '{ep.name}' ({ep.value})"
    try:
        obj = ep.load()
    except Exception as exc:  # anything a third-party import raises
        return f"{where} failed to import: {type(exc).__name__}: {' '.join(str(exc).split())}"
    try:
        if isinstance(obj, type) and issubclass(obj, Trick):
            if obj.name not in _REGISTRY or _REGISTRY[obj.name] is not obj:
                register_trick(obj)
            return None
    except TrickError as exc:
        return f"{where}: {exc}"
    if isinstance(obj, types.ModuleType):
        mine = [n for n, cls in _REGISTRY.items()
                if cls.__module__ == obj.__name__ or cls.__module__.startswith(obj.__name__ + ".")]
        if not mine:
            return (f"entry point '{ep.name}' loaded module '{obj.__name__}' but it registered "
                    f"no trick (decorate its Trick class with @register_trick)")
        return None
    return (f"{where} loaded {obj!r}, which is neither a module nor a Trick class")


def plugin_errors() -> list[str]:
    """One line per `ganbench.tricks` plug-in that failed to load (after `load_tricks()`)."""
    load_tricks()
    return list(_PLUGIN_ERRORS)


def list_tricks(pattern: str = "*") -> list[str]:
    load_tricks()
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))


def get_trick_class(name: str) -> type[Trick]:
    load_tricks()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        if _PLUGIN_ERRORS:  # the trick may be in the plug-in that failed: say so on the line
            hint += f"; {len(_PLUGIN_ERRORS)} plug-in(s) failed to load: {_PLUGIN_ERRORS[0]}"
        raise TrickError(f"unknown trick '{name}'{hint} (see `ganbench tricks`)") from None


def _coerce(trick: str, field: dataclasses.Field, value: Any, hint: Any) -> Any:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    where = f"trick '{trick}' param '{field.name}'"
    if origin is typing.Literal:
        if value not in args:
            raise TrickError(f"{where} must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(trick, field, value, next(a for a in args if a is not type(None)))
    if hint is bool:
        if not isinstance(value, bool):
            raise TrickError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TrickError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TrickError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise TrickError(f"{where} must be a string, got {value!r}")
        return value
    return value


def param_types(cls: type[Trick]) -> dict[str, Any]:
    return typing.get_type_hints(cls.Params)


def create_trick(name: str, **params: Any) -> Trick:
    """Build a trick with typed, validated params; unknown or ill-typed params fail at once."""
    cls = get_trick_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls.Params)}
    hints = param_types(cls)
    unknown = sorted(set(params) - set(fields))
    if unknown:
        accepted = ", ".join(fields) or "none"
        raise TrickError(f"trick '{name}' has no param {', '.join(map(repr, unknown))} "
                         f"(accepted: {accepted})")
    values = {k: _coerce(name, fields[k], v, hints[k]) for k, v in params.items()}
    try:
        p = cls.Params(**values)
        check = getattr(p, "validate", None)
        if check is not None:
            check()
    except (TypeError, ValueError) as exc:
        raise TrickError(f"trick '{name}': {exc}") from None
    return cls(p)


def conflict_reasons(tricks: Sequence[Trick], kind: str | None = None,
                     traits: frozenset[str] | None = None, arch: str = "") -> list[str]:
    """Why this set of tricks may not run together (on data of `kind` offering `traits`, see
    `bench.data.dataset_traits`; None: not checked; with the nets of `arch`, see
    `bench.core.config.ARCH_SLOTS`); empty when allowed."""
    return [text for _, text in typed_conflict_reasons(tricks, kind, traits, arch)]


def typed_conflict_reasons(tricks: Sequence[Trick], kind: str | None = None,
                           traits: frozenset[str] | None = None,
                           arch: str = "") -> list[tuple[str, str]]:
    """`conflict_reasons` with each reason's type: "data" (a trick does not apply to this data:
    the cell is `not-applicable`) or "tricks" (the set itself may not run, alone or with the
    named architecture's nets: `conflict`)."""
    reasons: list[tuple[str, str]] = []
    names = {t.name for t in tricks}
    arch_slots = ARCH_SLOTS.get(arch, {})
    claimed: dict[str, str] = {}
    excluded_pairs: set[frozenset[str]] = set()  # a conflict declared on both sides is said once
    for t in sorted(tricks, key=lambda t: t.name):
        if kind is not None and kind not in t.applies_to:
            reasons.append(("data", f"{t.name} does not apply to {kind} data "
                                    f"(applies to: {', '.join(sorted(t.applies_to))})"))
        elif traits is not None and not set(t.needs) <= traits:
            missing = ", ".join(TRAITS[n] for n in sorted(set(t.needs) - traits))
            reasons.append(("data", f"{t.name} does not apply to data without {missing}"))
        for slot in slots_of(t):
            if slot in arch_slots:
                reasons.append(("tricks", f"{t.name} claims the '{slot}' slot (it {SLOTS[slot]}), "
                                          f"which arch '{arch}' fills: {arch_slots[slot]}"))
            elif slot in claimed:
                reasons.append(("tricks", f"{claimed[slot]} and {t.name} both claim the "
                                          f"'{slot}' slot (it {SLOTS[slot]})"))
            else:
                claimed[slot] = t.name
        for other, why in t.excludes.items():
            pair = frozenset((t.name, other))
            if other in names and pair not in excluded_pairs:
                excluded_pairs.add(pair)
                reasons.append(("tricks", f"{t.name} excludes {other}: {why}"))
        for other, why in t.requires.items():
            if other not in names:
                reasons.append(("tricks", f"{t.name} requires {other}: {why}"))
    return reasons


def build_tricks(specs: Iterable[tuple[str, dict[str, Any]]], kind: str | None = None,
                 traits: frozenset[str] | None = None, arch: str = "") -> list[Trick]:
    """Create tricks from (name, params) pairs and refuse a set that may not run together
    (TrickError listing every reason)."""
    tricks = [create_trick(n, **p) for n, p in specs]
    reasons = conflict_reasons(tricks, kind, traits, arch)
    if reasons:
        raise TrickError("these tricks cannot run together: " + "; ".join(reasons))
    return tricks


def relations(name: str) -> dict[str, dict[str, Any]]:
    """Every other trick's relation to `name`, in either direction (default params):
    `conflicts` {other: [reasons]} for pairs that may not run together (an exclusion declared
    on either side, a shared slot), `required_by` {other: why} for tricks that need it."""
    me = create_trick(name)
    alone = set(conflict_reasons([me]))
    conflicts: dict[str, list[str]] = {}
    required_by: dict[str, str] = {}
    for other in list_tricks():
        if other == name:
            continue
        them = create_trick(other)
        pair = [r for r in conflict_reasons([me, them])
                if r not in alone and r not in conflict_reasons([them])]
        if pair:
            conflicts[other] = pair
        if name in them.requires:
            required_by[other] = them.requires[name]
    return {"conflicts": conflicts, "required_by": required_by}


def describe(name: str) -> dict[str, Any]:
    """Everything `ganbench tricks` shows about one trick, JSON-ready."""
    cls = get_trick_class(name)
    hints = param_types(cls)
    params = []
    for f in dataclasses.fields(cls.Params):
        default = f.default if f.default is not dataclasses.MISSING else None
        params.append({"name": f.name, "type": _type_name(hints[f.name]), "default": default})
    return {
        "name": cls.name, "version": cls.version, "summary": cls.summary, "source": cls.source,
        "slots": list(slots_of(create_trick(name))),  # with default params
        "applies_to": sorted(cls.applies_to), "needs": sorted(cls.needs),
        "excludes": dict(cls.excludes), "requires": dict(cls.requires), "params": params,
        "module": cls.__module__, **relations(name),
    }


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return "|".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        return " or ".join("none" if a is type(None) else _type_name(a) for a in args)
    return getattr(hint, "__name__", str(hint))
