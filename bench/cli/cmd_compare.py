"""`ganbench compare`: the "add a trick and compare" workflow in one command.

Takes each dataset's baseline cells of a grid as templates, adds each named trick alone (every
param at its default, the installed version pinned), trains what the store lacks with paired
seeds, records the cells as grid `compare:<tricks>@<grid>` (design add-one) so the report can
select exactly them, prints the comparison (mean ± std, Δ vs baseline with a paired 95% CI), and
writes the full report."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.common import (DEFAULT_STORE, PLACEMENT_HELP, CliError, add_curve_option,
                              add_data_options, add_device_option, load_data)


def register(sub) -> None:
    p = sub.add_parser("compare", help="train (or reuse) the baseline and the named trick(s) "
                                       "with paired seeds; print Δ with CIs; write the report")
    p.add_argument("--trick", required=True, metavar="NAME[,NAME...]",
                   help="trick(s) to compare with the baseline, each alone")
    p.add_argument("--grid", default="cpu-default",
                   help="preset or .toml whose baseline cells are the templates (datasets, "
                        "budgets, seeds)")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="seeds 0..N-1 instead of the grid's")
    p.add_argument("--store", default=DEFAULT_STORE, help="results store folder")
    p.add_argument("--workers", type=int, default=None, help="processes (default: CPU cores)")
    p.add_argument("--retry", default="", metavar="STATUSES",
                   help="train stored cells with these statuses again, e.g. failed,diverged "
                        "(the old record is kept in the new one's history)")
    add_device_option(p, PLACEMENT_HELP)
    p.add_argument("--out", help="report folder (default: <store>/compare-<tricks>)")
    p.add_argument("--bootstrap", action="store_true",
                   help="BCa bootstrap CIs where a Δ has >= 10 paired seeds (paired t below)")
    add_data_options(p)
    add_curve_option(p)
    p.set_defaults(func=run)


def compare_cells(grid, tricks: list[str], seeds: int | None):
    """(cells, members, spec): the grid's baseline cells (re-seeded when asked) and each trick
    added to each of them."""
    from bench.schedule.grid import full_spec

    templates = [c for c in grid.cells if not c.tricks]
    if not templates:
        raise CliError(f"grid '{grid.name}' has no baseline cells to compare against")
    if seeds is not None:
        by_variant = {c.variant_id: c for c in templates}
        templates = [c.replace(seed=s) for c in by_variant.values() for s in range(seeds)]
    specs = [full_spec(t) for t in tricks]
    # the template's swept / tuned values (e.g. its LR in a tune.lr grid) carry over to the
    # variants made from it, so the report keeps LRs apart and can show the tuned view
    template_info = {m["variant_id"]: m.get("info", {}) for m in getattr(grid, "members", ())}
    cells, members = [], []
    for base in templates:
        info = template_info.get(base.variant_id, {})
        for spec in [None] + specs:
            cell = base if spec is None else base.replace(tricks=(spec,))
            cells.append(cell)
            members.append({"design": "add-one", "dataset": cell.data.name,
                            "cell_id": cell.cell_id, "variant_id": cell.variant_id,
                            "info": {"label": cell.label, "tricks": list(cell.trick_names),
                                     "factors": {}, "sweep": dict(info.get("sweep", {})),
                                     "tune": dict(info.get("tune", {})),
                                     "role": "baseline" if spec is None else "variant"}})
    grid_spec = getattr(grid, "spec", {}) or {}
    spec = {"description": f"ganbench compare {','.join(tricks)} on grid {grid.name}",
            "designs": {c.data.name: "add-one" for c in templates},
            "tune": grid_spec.get("tune", {}),
            "base_lr": grid_spec.get("base_lr") or {c.data.name: c.train.g_optim.lr
                                                    for c in templates},
            "template_grid": grid.name,
            "command": f"ganbench compare --trick {','.join(tricks)} --grid {grid.name}"
                       + (f" --seeds {seeds}" if seeds is not None else "")}
    return cells, members, spec


def run(args: argparse.Namespace) -> int:
    from bench.cli.cmd_run import parse_retry  # the same --retry as `run`
    from bench.schedule.executor import default_workers, run_cells
    from bench.schedule.grid import load_grid
    from bench.trickapi.registry import get_trick_class
    from bench.schedule.run_output import RunTable
    from bench.store import Store

    retry = parse_retry(args.retry)
    tricks = [t.strip() for t in args.trick.split(",") if t.strip()]
    if not tricks:
        raise CliError("--trick needs at least one trick name")
    if len(set(tricks)) != len(tricks):
        raise CliError(f"--trick lists a trick twice: {args.trick}")
    if args.seeds is not None and args.seeds < 1:
        raise CliError(f"--seeds must be >= 1, got {args.seeds}")
    for t in tricks:
        get_trick_class(t)  # unknown names fail here, with suggestions
    grid = load_grid(args.grid)
    cells, members, spec = compare_cells(grid, tricks, args.seeds)
    for cell in {(c.data.name, c.data.resolution): c for c in cells}.values():
        load_data(args, cell)
    name = f"compare:{'+'.join(tricks)}@{grid.name}"
    with Store(args.store) as store:
        store.put_grid(name, spec, members)
    workers = args.workers or default_workers()  # `main` resolves it; a direct call may not
    table = RunTable(cells, sys.stdout)
    table.header(f"compare {', '.join(tricks)} with the baseline of grid '{grid.name}': "
                 f"{len(table.cells)} cells -> {args.store} ({workers} worker(s)"
                 + (f"; retrying {', '.join(retry)}" if retry else "") + ")")
    for record in run_cells(cells, Path(args.store), workers=workers, device=args.device,
                            progress=sys.stderr.isatty(), curve_every=args.curve_every,
                            retry=retry):
        table.add(record)
    print(table.summary(args.store, len(table.cells)), flush=True)
    out = Path(args.out) if args.out else Path(args.store) / f"compare-{'+'.join(tricks)}"
    print_comparison(args.store, name, out, bootstrap=args.bootstrap)
    return table.exit_code(args.store)  # as `run`: 1 when a cell failed


def print_comparison(store, grid_name: str, out: Path, *, bootstrap: bool) -> None:
    from bench.report.build import write_report
    from bench.report.tables import to_text
    from bench.report.views import ci_note

    report = write_report(store, out, grid=grid_name, bootstrap=bootstrap,
                          command="ganbench " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    for t in report.tables:
        if t.name.endswith("-add-one"):
            heads = {c.split(" ")[1] for c in t.columns if c.startswith("Δ ")}
            shown = [c for c in t.columns if c in ("variant", "status", "n")
                     or c.startswith("Δ ") or c.split(" ")[0] in heads]
            print()
            print(to_text(t, shown))
    print(f"\nΔ: paired over seeds; {ci_note(bootstrap)} ^ = best mean. "
          f"Report: {out / 'index.md'}")
