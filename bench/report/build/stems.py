"""Portable file stems for a report's tables, figures and sample sheets, unique within one
report."""
from __future__ import annotations

import hashlib
import re


def slug(*parts: str) -> str:
    """A portable file stem: characters other than letters, digits and . _ + - become _. A part
    that changes gets a short hash of itself, so names that differ only there (`exp 1` and
    `exp_1`, or in non-ASCII letters) keep apart."""
    out = []
    for p in parts:
        if p:
            safe = re.sub(r"[^A-Za-z0-9._+-]", "_", p)
            out.append(safe if safe == p else
                       f"{safe}_{hashlib.sha256(p.encode()).hexdigest()[:6]}")
    return "-".join(out)


class Stems:
    """File stems unique within one report: parts that join to the same stem (`a-b`+`c` and
    `a`+`b-c`) get a hash of all parts after the first (the stem keeps its `-<design>` end,
    which `compare` looks for)."""

    def __init__(self) -> None:
        self.owner: dict[str, tuple[str, ...]] = {}

    def __call__(self, *parts: str) -> str:
        stem = slug(*parts)
        if self.owner.setdefault(stem, parts) != parts:
            first = slug(parts[0])
            tag = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:6]
            stem = f"{first}_{tag}{stem[len(first):]}"
            self.owner[stem] = parts
        return stem
