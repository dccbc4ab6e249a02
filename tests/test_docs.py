"""The docs cannot drift: reference pages render from the code and name everything it accepts,
the README stays short, every relative link in the README and the docs resolves, and every
source path they name (`bench/...`, `tricks/...`) exists.
(`make test` also builds the site with `mkdocs build --strict`.)"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.cli import make_parser
from bench.cli.reference import PAGES
from bench.designs import list_designs
from bench.trickapi.registry import list_tricks

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
LINK = re.compile(r"\[[^\]]*\]\(([^)#\s]+)(?:#[^)]*)?\)")
# a source path named in the text: `bench/...`, `tricks/...`, `benchmarks/...`, `examples/...`,
# `tests/...` (results/ is left out: the docs name folders a command will write)
CODE_PATH = re.compile(r"(?<![\w./-])((?:bench|tricks|benchmarks|examples|tests)/[\w./-]*)")


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    return {name: render() for name, render in PAGES.items()}


def test_the_tricks_page_lists_every_registered_trick(pages):
    for name in list_tricks("*"):
        assert f"| `{name}` |" in pages["tricks"], name


def test_the_hooks_page_lists_every_hook(pages):
    from bench.trickapi.hooks import HOOK_SPECS

    for spec in HOOK_SPECS:
        assert f"| `{spec.name}(" in pages["hooks"], spec.name


def test_the_designs_page_lists_every_design(pages):
    for name in list_designs():
        assert f"| `{name}` |" in pages["designs"], name


def test_the_cli_page_documents_every_command_and_option(pages):
    parser = make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, command in sub.choices.items():
        assert f"## `ganbench {name}`" in pages["cli"], name
        for action in command._actions:
            for flag in action.option_strings:
                assert flag in pages["cli"], (name, flag)


def test_every_grid_key_is_in_the_annotated_example(pages):
    """The grid-keys page lists the schema's key sets; the annotated TOML beside them is the
    grid module's docstring, which must mention every key so the page explains each one."""
    from bench.schedule import grid

    example = pages["grid-keys"].split("Every key, annotated:", 1)[1]
    for key in grid.TOP_KEYS | grid.DATA_KEYS | grid.TUNE_KEYS:
        as_table = re.search(rf"^\[+{re.escape(key)}\]+", example, re.M)
        as_key = re.search(rf"^\s*\"?{re.escape(key)}\b", example, re.M)
        assert as_table or as_key, f"grid key {key!r} is not explained in the grid module's docstring"


def test_the_readme_is_short_and_readable():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README has {len(lines)} lines; move detail into docs/"
    long = [i + 1 for i, line in enumerate(lines) if len(line) > 100 and not line.startswith("|")]
    assert not long, f"README lines over 100 characters: {long}"


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))],
                         ids=lambda p: p.name)
def test_relative_links_resolve(page):
    for target in LINK.findall(page.read_text()):
        if re.match(r"[a-z]+:", target) or target.startswith("reference/"):
            continue  # external, or a page generated at build time
        assert (page.parent / target).exists(), f"{page.name}: broken link {target}"


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.glob("*.md"))],
                         ids=lambda p: p.name)
def test_source_paths_named_in_the_text_exist(page):
    """Every `bench/...`, `tricks/...` (etc.) path a page names exists, as a file, a folder or a
    module without its `.py` (templates such as `tricks/<name>.py` and wildcards are skipped)."""
    missing = []
    for line in page.read_text().splitlines():
        for path in CODE_PATH.findall(line):
            path = path.rstrip(".,")
            if any(c in line[line.find(path) + len(path):][:1] for c in "<*{"):
                continue  # a template: the path goes on with <name>, * or {a,b}
            if not (ROOT / path).exists() and not (ROOT / f"{path}.py").exists():
                missing.append(path)
    assert not missing, f"{page.name} names paths that do not exist: {missing}"


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in DOCS.glob("*.md"):
        assert f" {page.name}" in nav, f"{page.name} is not in mkdocs.yml's nav"
    for name in PAGES:
        assert f"reference/{name}.md" in nav, name
