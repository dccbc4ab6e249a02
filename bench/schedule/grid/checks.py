"""Reading a grid file and checking its values: every error is one line naming the file, the
table, the key, the value and what is allowed (bench/schedule/grid/__init__.py reads a grid
with these)."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.core.config import ConfigError
from bench.core.metric_directions import METRIC_DIRECTIONS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def read_toml(path: Path) -> dict:
    """The parsed grid file; unreadable, non-UTF-8 or invalid TOML is a one-line ConfigError."""
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the "
                          f"grid file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def show(value: Any) -> str:
    """A value as an error quotes it: its repr, cut to one short line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Checker:
    """One-line errors naming the file, the key, the value and what is allowed. `where` is the
    table prefix of the key ("" at top level, "[tune] ", "[[data]] #2 ")."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, key: str, value: Any, allowed: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}{key} = {show(value)}: expected {allowed}")

    def error(self, where: str, text: str) -> ConfigError:
        """A rule that is not one value's type: `text` says what is wrong."""
        return ConfigError(f"{self.path}: {where}{text}")

    @contextmanager
    def naming(self, where: str, *types: type[Exception]):
        """Re-raise an error of a check made elsewhere (a config class, the data registry) as a
        ConfigError that names the file and the table."""
        try:
            yield
        except types or (ConfigError,) as exc:
            raise self.error(where, str(exc)) from None

    def keys(self, table: dict, allowed: set[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            raise ConfigError(f"{self.path}: {where}unknown key(s) {', '.join(unknown)} "
                              f"(allowed: {', '.join(sorted(allowed))})")

    def int_(self, value: Any, where: str, key: str, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, key, value, f"an integer >= {minimum}")
        return value

    def number(self, value: Any, where: str, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
                or value == float("inf"):
            raise self.fail(where, key, value, "a positive number")
        return float(value)

    def bool_(self, value: Any, where: str, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(where, key, value, "true or false")
        return value

    def str_(self, value: Any, where: str, key: str) -> str:
        if not isinstance(value, str):
            raise self.fail(where, key, value, "a string")
        return value

    def list_(self, value: Any, where: str, key: str, item, what: str) -> list:
        if not isinstance(value, list) or not value:
            raise self.fail(where, key, value, f"a non-empty list of {what}")
        try:
            return [item(v) for v in value]
        except ConfigError:
            raise self.fail(where, key, value, f"a non-empty list of {what}") from None

    def ints(self, value: Any, where: str, key: str, minimum: int) -> list[int]:
        return self.list_(value, where, key, lambda v: self.int_(v, where, key, minimum),
                          f"integers >= {minimum}")

    def strs(self, value: Any, where: str, key: str) -> list[str]:
        return self.list_(value, where, key, lambda v: self.str_(v, where, key), "strings")

    def numbers(self, value: Any, where: str, key: str) -> list[float]:
        """A list of lrs: a bad item is named by itself (unlike `ints`, which names the list)."""
        return [self.number(v, where, key)
                for v in self.list_(value, where, key, lambda v: v, "positive numbers")]

    def axis(self, value: Any, where: str, key: str) -> list:
        """A sweepable data key: one value or a list of values (the sweep axis)."""
        one = (lambda v: self.number(v, where, key)) if key == "lr" else \
            (lambda v: self.int_(v, where, key, 2 if key == "batch_size" else 1))
        if isinstance(value, list):
            what = "positive numbers" if key == "lr" else "integers"
            return self.list_(value, where, key, one, what)
        return [one(value)]

    def metric(self, value: Any, where: str, key: str) -> str:
        """A metric name the tuning or the verdict can rank by (one with a direction)."""
        if METRIC_DIRECTIONS.get(value) is None:
            raise self.fail(where, key, value, "a metric with a direction: "
                            + ", ".join(m for m, d in METRIC_DIRECTIONS.items() if d))
        return value
