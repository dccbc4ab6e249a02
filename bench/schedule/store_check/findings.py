"""What `ganbench check` found: problems (not repaired), repairs made, and notes."""
from __future__ import annotations

from dataclasses import dataclass, field

from bench.store.db import printable


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)   # found (and not repaired)
    repaired: list[str] = field(default_factory=list)   # fixed by --repair
    notes: list[str] = field(default_factory=list)      # counts, what was looked at

    def problem(self, text: str) -> None:
        self.problems.append(printable(text))
