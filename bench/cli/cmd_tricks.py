"""`ganbench tricks`: list registered tricks, their params, slots and conflicts. Reads the
descriptions from a cache keyed by the trick sources (bench/cli/trick_catalog.py), so a listing
imports no torch unless a trick file or plug-in changed since the last one (`--hooks` does)."""
from __future__ import annotations

import argparse
import fnmatch
import json
from typing import Any

from bench.cli.common import LOG, CliError


def register(sub) -> None:
    p = sub.add_parser("tricks", help="list registered tricks",
                       description="List registered tricks with their params, slots and every "
                                   "conflict in either direction.")
    p.add_argument("pattern", nargs="?", default="*", help="name or wildcard filter, e.g. '*noise*'")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--matrix", action="store_true", help="pairwise compatibility matrix")
    p.add_argument("--markdown", action="store_true", help="the table of tricks in Markdown (docs/tricks.md)")
    p.add_argument("--hooks", action="store_true",
                   help="the table of hooks in Markdown (how each is called and combined)")
    p.add_argument("--no-cache", action="store_true",
                   help="describe the tricks from a fresh import (and refresh the cache)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.hooks:
        from bench.trickapi.hook_table import markdown_table as hook_table

        print(hook_table())
        return 0
    from bench.cli.trick_catalog import load

    catalog, cached = load(use_cache=not args.no_cache)
    if cached:  # a fresh load printed these itself
        for problem in catalog["plugin_errors"]:
            LOG.warning(problem)
    LOG.debug("trick descriptions from the cache" if cached else "trick descriptions from a "
              "fresh import (cached for the next listing)")
    names = sorted(n for n in catalog["names"] if fnmatch.fnmatchcase(n, args.pattern))
    if not names:
        raise CliError(f"no trick matches '{args.pattern}'")
    if args.matrix:
        return _print_matrix(names, catalog["matrix"], args.json)
    traits = catalog["traits"]
    infos = [catalog["infos"][n] for n in names]
    if args.markdown:
        print(markdown_table(infos, traits))
        return 0
    if args.json:
        print(json.dumps(infos, indent=2))
        return 0
    for info in infos:
        params = ", ".join(f"{p['name']}={p['default']!r}" for p in info["params"]) or "-"
        print(f"{info['name']:<28} {info['summary']}")
        print(f"{'':<28} source: {info['source']}; applies to: {_data_text(info, traits)}")
        print(f"{'':<28} params: {params}")
        if info["slots"]:
            print(f"{'':<28} slots: {', '.join(info['slots'])}")
        # relations in both directions: what it excludes or is excluded by, shared slots
        for other, reasons in info["conflicts"].items():
            print(f"{'':<28} not with {other}: {'; '.join(reasons)}")
        for other, why in info["requires"].items():
            print(f"{'':<28} requires {other}: {why}")
        for other, why in info["required_by"].items():
            print(f"{'':<28} required by {other}: {why}")
    return 0


def markdown_table(infos: list[dict[str, Any]], traits: dict[str, str] | None = None) -> str:
    """The Markdown table of tricks (`traits`: bench.trickapi.trick.TRAITS, from the catalog)."""
    rows = ["| trick | what it changes | source | default params | slots | data |",
            "|---|---|---|---|---|---|"]
    for i in infos:
        params = ", ".join(f"{p['name']}={p['default']}" for p in i["params"]) or "–"
        rows.append(f"| `{i['name']}` | {i['summary']} | {i['source']} | {params} | "
                    f"{', '.join(i['slots']) or '–'} | {_data_text(i, traits)} |")
    return "\n".join(rows)


def _data_text(info: dict[str, Any], traits: dict[str, str] | None = None) -> str:
    """Data kinds, and what the data must offer, e.g. 'image with one class label per sample'."""
    if traits is None:
        from bench.trickapi.trick import TRAITS as traits

    needs = " and ".join(traits[n] for n in info["needs"])
    return ", ".join(info["applies_to"]) + (f" with {needs}" if needs else "")


def _print_matrix(names: list[str], full: dict[str, dict[str, list[str]]], as_json: bool) -> int:
    matrix = {a: {b: full[a][b] for b in names} for a in names}
    if as_json:
        print(json.dumps(matrix, indent=2))
        return 0
    width = max(len(n) for n in names)
    print(" " * width + "  " + " ".join(f"{i:>2}" for i in range(len(names))))
    for i, a in enumerate(names):
        cells = " ".join(" x" if matrix[a][b] else (" ." if a != b else " -") for b in names)
        print(f"{a:>{width}}  {cells}  {i}")
    print("\nx = not allowed together:")
    seen = set()
    for a in names:
        for b in names:
            if matrix[a][b] and frozenset((a, b)) not in seen:
                seen.add(frozenset((a, b)))
                print(f"  {a} + {b}: {'; '.join(matrix[a][b])}")
    return 0
