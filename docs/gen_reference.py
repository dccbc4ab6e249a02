"""Generates the reference pages at build time (mkdocs-gen-files), from the registry, the hook
rules, the designs, the grid schema and the argument parsers, so they cannot drift from the code.
`python docs/gen_reference.py OUT_DIR` writes the same pages without mkdocs (used by the tests)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.cli.reference import PAGES  # noqa: E402


def _write_with(opener) -> None:
    for name, render in PAGES.items():
        with opener(f"reference/{name}.md") as fh:
            fh.write(render())


if __name__ == "__main__" and len(sys.argv) == 2:
    out = Path(sys.argv[1])
    (out / "reference").mkdir(parents=True, exist_ok=True)
    _write_with(lambda rel: open(out / rel, "w", encoding="utf-8"))
else:
    import mkdocs_gen_files

    _write_with(lambda rel: mkdocs_gen_files.open(rel, "w"))
