"""The docs site's reference pages, rendered from the code itself: the trick registry, the hook
rules, the designs, the grid schema and the argument parsers. `docs/gen_reference.py` writes them
at build time, so a page cannot drift from what the program accepts (`make docs`)."""
from __future__ import annotations

import argparse
import contextlib
import io
import re
from typing import Callable


def _command_output(*argv: str) -> str:
    """What `ganbench ARGV` prints: the reference shows exactly what a user would see."""
    from bench.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code != 0:
        raise RuntimeError(f"`ganbench {' '.join(argv)}` exited {code}")
    return out.getvalue().rstrip("\n")


def tricks_page() -> str:
    table = _command_output("tricks", "--markdown")
    details = _command_output("tricks")
    return (
        "# Tricks\n\n"
        "Generated from the registry (`ganbench tricks --markdown`). Each trick's module in "
        "`tricks/` has its source, its defaults and the figures behind them in its docstring; "
        "[The tricks](../tricks.md) says what a row measures.\n\n"
        f"{table}\n\n"
        "## Params, slots and every conflict\n\n"
        "The output of `ganbench tricks` (conflicts in either direction, with reasons):\n\n"
        f"```text\n{details}\n```\n")


def hooks_page() -> str:
    return (
        "# Hooks\n\n"
        "Generated from the hook rules (`ganbench tricks --hooks`). *combines* says how the "
        "results of several tricks are combined: `chain` (each result is the next trick's "
        "input, in name order), `product`, `first` (the one trick that claims the slot decides), "
        "`merge` (dicts; a name returned twice is an error), `each` (every trick is called), "
        "`same` (every trick must return the same value). "
        "[Writing a trick](../writing-a-trick.md) explains how to use them.\n\n"
        f"{_command_output('tricks', '--hooks')}\n")


def designs_page() -> str:
    from bench.designs import list_designs

    rows = "\n".join(f"| `{name}` | {summary} |" for name, summary in list_designs().items())
    return (
        "# Designs\n\n"
        "Generated from `bench/designs/` (`ganbench designs`). A grid's `design` key names one "
        "or a list; every design also trains the baseline. "
        "[Grids and designs](../grids.md) explains each.\n\n"
        f"| design | variants |\n|---|---|\n{rows}\n")


def grid_keys_page() -> str:
    from bench.schedule import grid

    def keys(names: set[str]) -> str:
        return ", ".join(f"`{k}`" for k in sorted(names))

    example = re.search(r"```toml\n(.*?)```", grid.__doc__ or "", re.S)
    return (
        "# Grid keys\n\n"
        "Generated from the grid schema (`bench/schedule/grid/__init__.py`): the keys a grid "
        "file may use. An unknown key, or a value of the wrong type, is one line naming the "
        "file, the key, the value and what is allowed (exit 2, nothing written).\n\n"
        f"- top level: {keys(grid.TOP_KEYS)}\n"
        f"- `[[data]]` tables: {keys(grid.DATA_KEYS)}; of these, {keys(set(grid.SWEEPABLE))} may "
        "be lists (sweep axes)\n"
        f"- `[tune]`: {keys(grid.TUNE_KEYS)}\n\n"
        "Every key, annotated:\n\n"
        f"```toml\n{example.group(1) if example else ''}```\n")


def _usage_blocks(parser: argparse.ArgumentParser) -> str:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    blocks = []
    for name, command in sub.choices.items():
        command.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=96)
        blocks.append(f"## `ganbench {name}`\n\n```text\n{command.format_help().rstrip()}\n```\n")
    return "\n".join(blocks)


def cli_page() -> str:
    from bench.cli import make_parser

    return (
        "# Command line\n\n"
        "Generated from the argument parsers (`ganbench COMMAND --help`). Bad input of any "
        "kind ends with one line on stderr and exit code 2, before anything is written; a run "
        "with failed cells exits 1; Ctrl-C exits 130, SIGTERM 143.\n\n"
        f"{_usage_blocks(make_parser())}")


PAGES: dict[str, Callable[[], str]] = {
    "tricks": tricks_page,
    "hooks": hooks_page,
    "designs": designs_page,
    "grid-keys": grid_keys_page,
    "cli": cli_page,
}
