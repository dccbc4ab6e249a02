"""What `ganbench check` prints: the summary line, or the findings as one JSON object."""
from __future__ import annotations

import json
from pathlib import Path

from bench.schedule.store_check.findings import Report


def summary(rep: Report, root: Path, repair: bool) -> str:
    if repair:
        if rep.problems:
            return (f"ganbench check: {len(rep.repaired)} repair(s) made, {len(rep.problems)} "
                    f"problem(s) left in {root}")
        return f"ganbench check: store {root} repaired ({len(rep.repaired)} repair(s))" \
            if rep.repaired else f"ganbench check: store {root} is sound; nothing to repair"
    if rep.problems:
        return (f"ganbench check: {len(rep.problems)} problem(s) in {root}; `ganbench check "
                f"--store {root} --repair` fixes what it safely can")
    return f"ganbench check: store {root} is sound ({'; '.join(rep.notes)})"


def as_json(rep: Report) -> str:
    return json.dumps({"problems": rep.problems, "repaired": rep.repaired, "notes": rep.notes})
