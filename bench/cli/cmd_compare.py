"""`ganbench compare`: the "add a trick and compare" workflow in one command.

Takes each dataset's baseline cells of a grid as templates, adds each named trick alone (every
param at its default, the installed version pinned), trains what the store lacks with paired
seeds, records the cells as grid `compare:<tricks>@<grid>` (design add-one) so the report can
select exactly them, prints the comparison (mean ± std, Δ vs baseline with a paired 95% CI), and
writes the full report."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from bench.cli.common import (DEFAULT_STORE, LOG, PLACEMENT_HELP, CliError, add_curve_option,
                              add_data_options, add_device_option, add_tensorboard_option,
                              load_data, quiet)


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
    add_tensorboard_option(p)
    p.set_defaults(func=run)


def compare_cells(grid, tricks: list[str], seeds: int | None):
    """(cells, members, spec): the grid's baseline cells (re-seeded when asked) and each trick
    added to each of them."""
    from bench.schedule.grid import full_spec, step_cost

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
                                     "step_cost": 1.0 if spec is None else step_cost((spec,)),
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
    name = f"compare:{'+'.join(tricks)}@{grid.name}"
    if grid.plans:  # held-out tuning: the grid's own protocol, with the named tricks
        return run_held_out(args, grid, tricks, name, retry)
    cells, members, spec = compare_cells(grid, tricks, args.seeds)
    for cell in {(c.data.name, c.data.resolution): c for c in cells}.values():
        load_data(args, cell)
    with Store(args.store) as store:
        store.put_grid(name, spec, members)
    workers = args.workers or default_workers()  # `main` resolves it; a direct call may not
    table = RunTable(cells, sys.stdout)
    table.header(f"compare {', '.join(tricks)} with the baseline of grid '{grid.name}': "
                 f"{len(table.cells)} cells -> {args.store} ({workers} worker(s)"
                 + (f"; retrying {', '.join(retry)}" if retry else "") + ")")
    try:
        for record in run_cells(cells, Path(args.store), workers=workers, device=args.device,
                                progress=sys.stderr.isatty() and not quiet(),
                                curve_every=args.curve_every,
                                retry=retry):
            table.add(record)
    except KeyboardInterrupt:
        table.flush_rest()
        if not table.finished:
            raise  # `main` says how to resume
        LOG.info("interrupted after every cell had finished; the comparison follows")
    print(table.summary(args.store, len(table.cells)), flush=True)
    out = Path(args.out) if args.out else Path(args.store) / f"compare-{'+'.join(tricks)}"
    print_comparison(args.store, name, out, bootstrap=args.bootstrap)
    return table.exit_code(args.store)  # as `run`: 1 when a cell failed


def held_out_doc(doc: dict, tricks: list[str], seeds: int | None) -> dict:
    """A held-out grid file's protocol (data tables, budgets, [tune], tuning seeds) with `tricks`
    alone as its add-one variants: every dataset trains them (no per-table trick lists or
    excludes), [params] and [tune] keep only their keys. `seeds`: evaluation seeds 0..N-1."""
    # [published] maps the grid's own variants onto a paper's rows: not these tricks'
    doc = {k: v for k, v in doc.items() if k not in ("cells", "fraction_resolution", "published")}
    doc.update(design="add-one", tricks=list(tricks))
    own = lambda table: {k: v for k, v in table.items()  # noqa: E731
                         if "." not in k or k.split(".", 1)[0] in tricks}
    if "params" in doc:
        doc["params"] = own(doc["params"])
    if "tune" in doc:
        doc["tune"] = own(doc["tune"])
    data = [{k: v for k, v in t.items() if k not in ("tricks", "exclude")}
            for t in doc.get("data", [])]
    if seeds is not None:
        doc["seeds"] = list(range(seeds))
        data = [{k: v for k, v in t.items() if k != "seeds"} for t in data]
    doc["data"] = data
    return doc


def stored_members(store, template: str, datasets: set[str]) -> list[dict]:
    """The template grid's stored add-one evaluation memberships, when `run` trained it into this
    store: the other tricks a new one is reported beside (only cells with a record)."""
    if template not in store.grids():
        return []
    return [m for m in store.members(template)
            if m["design"] == "add-one" and m["dataset"] in datasets
            and m["info"].get("seed_role") == "eval" and store.get(m["cell_id"]) is not None]


def run_held_out(args, template, tricks: list[str], name: str, retry) -> int:
    """compare on a grid with held-out tuning: each trick (and the baseline) tuned on the grid's
    tuning seeds, trained on its evaluation seeds, reported beside the baseline and the tricks
    the store already holds for that grid, with one verdict line per trick and dataset."""
    from bench.schedule.executor import default_workers
    from bench.schedule.grid import load_grid
    from bench.schedule.run_output import RunTable
    from bench.schedule.staged import run_staged, stage2_of
    from bench.store import Store
    from bench.cli.cmd_run import stage2_title

    grid = load_grid(args.grid, edit=lambda doc: held_out_doc(doc, tricks, args.seeds))
    cells = list(grid.cells)
    for cell in {(c.data.name, c.data.resolution): c for c in cells}.values():
        load_data(args, cell)
    spec = {**grid.spec, "template_grid": template.name,
            "command": f"ganbench compare --trick {','.join(tricks)} --grid {template.name}"
                       + (f" --seeds {args.seeds}" if args.seeds is not None else "")}
    grid = dataclasses.replace(grid, spec=spec)

    def members() -> list[dict]:
        with Store(args.store) as store:
            others = stored_members(store, template.name, {p.dataset for p in grid.plans})
        mine = list(grid.members) + stage2_of(grid, Path(args.store)).members
        ids = {(m["design"], m["cell_id"]) for m in mine}
        return mine + [m for m in others if (m["design"], m["cell_id"]) not in ids]

    with Store(args.store) as store:
        store.put_grid(name, spec, members())
    workers = args.workers or default_workers()
    table = RunTable(cells, sys.stdout)
    table.header(f"compare {', '.join(tricks)} with the baseline of grid '{template.name}' "
                 f"(held-out tuning): stage 1: {len(cells)} cells -> {args.store} "
                 f"({workers} worker(s)"
                 + (f"; retrying {', '.join(retry)}" if retry else "") + ")")
    stage2_known: list[bool] = []  # stage 2 is known once stage 1 is done

    def on_stage2(stage2) -> None:
        stage2_known.append(True)
        table.extend(stage2.cells, stage2_title(grid, stage2))

    try:
        for record in run_staged(grid, Path(args.store), name=name, on_stage2=on_stage2,
                                 workers=workers, device=args.device,
                                 progress=sys.stderr.isatty() and not quiet(),
                                 curve_every=args.curve_every, retry=retry):
            table.add(record)
    except KeyboardInterrupt:
        table.flush_rest()
        if not (table.finished and stage2_known):
            raise  # `main` says how to resume
        LOG.info("interrupted after every cell had finished; the comparison follows")
    with Store(args.store) as store:  # with the other stored tricks, for the report
        store.put_grid(name, spec, members())
    print(table.summary(args.store, len(table.cells)), flush=True)
    out = Path(args.out) if args.out else Path(args.store) / f"compare-{'+'.join(tricks)}"
    report = print_comparison(args.store, name, out, bootstrap=args.bootstrap)
    from bench.report.tuned import verdict_lines

    print()
    for line in verdict_lines(report.df, tricks, bootstrap=args.bootstrap,
                              specs=report.catalog.grids):
        print(line)
    return table.exit_code(args.store)


def fit_columns(t, shown: list[str], width: int = 100) -> str:
    """The table as text no wider than `width` (or the terminal, if narrower): when all the
    columns do not fit, blocks of metrics (each metric's mean beside its Δ) under the same
    leading columns (variant, status, n), one block after the other."""
    import shutil

    from bench.report.tables import to_text

    width = max(60, min(width, shutil.get_terminal_size((width, 24)).columns))

    def wide(text: str) -> int:
        return max(len(line) for line in text.splitlines()[1:])

    whole = to_text(t, shown)
    if wide(whole) <= width:
        return whole
    lead = [c for c in shown if c in ("variant", "status", "n")]
    groups: dict[str, list[str]] = {}
    for c in shown:
        if c not in lead:
            metric = c.split(" ")[1] if c.startswith("Δ ") else c.split(" ")[0]
            groups.setdefault(metric, []).append(c)
    blocks, current = [], []
    for cols in groups.values():
        if current and wide(to_text(t, lead + current + cols)) > width:
            blocks.append(current)
            current = []
        current += cols
    blocks.append(current)
    texts = [to_text(t, lead + cols) for cols in blocks]
    return "\n\n".join([texts[0]] + [f"{t.title} (continued)" + text[text.index("\n"):]
                                     for text in texts[1:]])


def print_comparison(store, grid_name: str, out: Path, *, bootstrap: bool):
    from bench.report.build import write_report
    from bench.report.views import ci_note

    report = write_report(store, out, grid=grid_name, bootstrap=bootstrap,
                          command="ganbench " + " ".join(sys.argv[1:]) if sys.argv[1:] else "")
    for t in report.tables:
        if t.name.endswith("-add-one"):
            heads = {c.split(" ")[1] for c in t.columns if c.startswith("Δ ")}
            shown = [c for c in t.columns if c in ("variant", "status", "n")
                     or c.startswith("Δ ") or c.split(" ")[0] in heads]
            print()
            print(fit_columns(t, shown))
    print(f"\nΔ: paired over seeds; {ci_note(bootstrap)} ^ = best mean. "
          f"Report: {out / 'index.md'}")
    return report
