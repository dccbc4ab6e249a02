"""`ganbench run --dry-run`: what a grid would do, without training. Cells by design, dataset and
status in the store, conflicts with their reasons, leave-one-out resolutions, fractional-factorial
aliases, where each cell would run, and an estimated time from the stored `ms_per_step` of
comparable cells (same dataset and tricks, else same dataset; eval time included)."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from pathlib import Path

from bench.data import dataset_kind
from bench.schedule.grid import Grid


def _timings(store_root: Path) -> tuple[dict, dict]:
    """Median seconds per step (training + eval share) by (dataset, label, batch) and dataset."""
    by_label, by_data = defaultdict(list), defaultdict(list)
    if not (store_root / "results.sqlite").is_file():
        return {}, {}
    from bench.store import Store

    with Store(store_root, create=False) as store:
        for r in store.records(status="done"):
            ms = r.timings.get("ms_per_step")
            if not ms or not r.step:
                continue
            per_step = ms / 1000 + r.timings.get("eval_s", 0) / r.step
            batch = r.config["train"]["batch_size"]
            by_label[(r.dataset, r.label, batch)].append(per_step)
            by_data[(r.dataset, batch)].append(per_step)
    med = lambda d: {k: statistics.median(v) for k, v in d.items()}  # noqa: E731
    return med(by_label), med(by_data)


def estimate_seconds(grid: Grid, todo_ids: set[str], store_root: Path, extra=()
                     ) -> tuple[float, int, int]:
    """(estimated seconds of one worker, cells timed from the calibrated per-step costs
    (bench/schedule/step_costs.py: no comparable record is stored), cells estimated from other tricks'
    cells of the same dataset and batch size: a trick such as unrolled or wgan_gp can cost
    several times the baseline's step, so those are a floor). `extra`: cells not in the grid's
    list (held-out tuning's evaluation cells) to count too."""
    from bench.schedule.step_costs import estimate_cell_seconds

    by_label, by_data = _timings(store_root)
    total, calibrated, borrowed = 0.0, 0, 0
    for cell in list(grid.cells) + list(extra):
        if cell.cell_id not in todo_ids:
            continue
        batch = cell.train.batch_size
        per_step = by_label.get((cell.data.name, cell.label, batch))
        if per_step is None:
            per_step = by_data.get((cell.data.name, batch))
            borrowed += per_step is not None
        if per_step is None:
            calibrated += 1
            total += estimate_cell_seconds(cell)
        else:
            total += per_step * cell.train.steps
    return total, calibrated, borrowed


def stage2_lines(grid: Grid, store_root: Path, stored: dict[str, str]) -> tuple[list[str], list]:
    """What `--dry-run` says about held-out tuning's stage 2 (evaluation cells trained after
    tuning), and the evaluation cells to count in the estimate: the resolved ones, and for a
    variant still to tune, its first candidate's (same steps unless `budget = "evals"` and a
    tuned param changes the cost)."""
    from bench.schedule.staged import stage2_of

    if not grid.plans:
        return [], []
    stage2 = stage2_of(grid, store_root)
    lines = ["", "held-out tuning (stage 2 trains after tuning):"]
    for dataset in dict.fromkeys(p.dataset for p in grid.plans):
        plans = [p for p in grid.plans if p.dataset == dataset]
        p0 = plans[0]
        pending = sum(p in stage2.pending for p in plans)
        tune_cells = sum(len(p.tune_cells()) for p in plans)
        lines.append(f"  {dataset}: {len(plans)} variants; stage 1: {tune_cells} cells on tuning "
                     f"seeds {list(p0.tune_seeds)} ({len(p0.candidates)} settings each or more); "
                     f"choice: best mean {p0.metric}; stage 2: "
                     f"{len(plans) * len(p0.eval_seeds)} cells on evaluation seeds "
                     f"{list(p0.eval_seeds)}: "
                     + (f"{len(plans) - pending} chosen, {pending} after tuning" if pending < len(plans)
                        else "all after tuning"))
    cells = list(stage2.cells) + [p.candidates[0].cell(s) for p in stage2.pending
                                  for s in p.eval_seeds]
    done = sum(c.cell_id in stored for c in stage2.cells)
    if done:
        lines.append(f"  {done} evaluation cells already stored")
    return lines, cells


def check_store_path(store_root: Path) -> None:
    """Raise the StoreError `run` would raise when it opens the store (a plain file, or a folder
    it may not write), without creating anything: the store is the first existing folder on
    the way to it."""
    import os

    from bench.store import StoreError

    db = store_root / "results.sqlite"
    probe = store_root
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise StoreError(f"cannot use store {db}: {probe} is not a folder")
    if not os.access(probe, os.W_OK):
        raise StoreError(f"cannot use store {db}: {probe} is not writable")
    if db.exists() and not (db.is_file() and os.access(db, os.W_OK)):
        raise StoreError(f"cannot use store {db}: not a writable file")


def fused_lines(cells: list, *, workers: int, device: str | None, gpus: int,
                fuse: bool | None, executor: str = "local") -> list[str]:
    """What `--dry-run` says about fused training of `cells` (those to train): the groups the
    executors would hand out (sizes, dataset, variant) and, counted by reason, why the other
    cells train alone. The same `work_units` the run uses, so it says what the run does (for
    `executor="ray"`, `workers` is the Ray cluster's CPUs and `gpus` its GPUs)."""
    from bench.schedule.fused.plan import FusedGroup, fusing_enabled, work_units

    if not cells:
        return []
    per = "Ray task" if executor == "ray" else "worker"
    if not fusing_enabled(fuse):
        return ["", f"fused training: off (--no-fuse or GANBENCH_NO_FUSE=1); "
                    f"{len(cells)} cells train one per {per}"]
    units, plan = work_units(cells, workers=workers, device=device, gpus=gpus, fuse=fuse)
    groups = [u for u in units if isinstance(u, FusedGroup)]
    fused = sum(map(len, groups))
    where = "on the GPU" if gpus and (device in (None, "auto") or str(device).startswith(
        "cuda")) else (f"on the CPU, split over the Ray cluster's {workers} CPU(s), one Ray task "
                       f"per group" if executor == "ray" else
                       f"on the CPU, split over {workers} worker(s)")
    lines = ["", f"fused training (docs/fused.md; --no-fuse turns it off): {fused} of "
                 f"{len(cells)} cells to train in {len(groups)} group(s) {where}"
                 + (f", sizes {', '.join(str(len(g)) for g in groups)}" if groups else "")]
    shown: Counter = Counter()
    for g in groups:
        c = g.cells[0]
        shown[(c.data.name, c.label, len(g))] += 1
    for (dataset, label, k), n in shown.items():
        lines.append(f"  {dataset:<14} {label:<40} {n} group(s) of {k}")
    reasons: dict[str, list[str]] = {}
    for u in units:
        if not isinstance(u, FusedGroup):
            reasons.setdefault(plan.alone.get(u.cell_id, "?"), []).append(u.label)
    if reasons:
        lines.append(f"one cell per {per}: {sum(map(len, reasons.values()))} cells")
        for why, labels in sorted(reasons.items(), key=lambda kv: -len(kv[1])):
            names = ", ".join(dict.fromkeys(labels))
            lines.append(f"  {len(labels):>4} cells ({names[:60]}): {why}")
    return lines


def print_dry_run(grid: Grid, store_root: Path, *, workers: int, device: str | None,
                  retry: tuple[str, ...] = (), fuse: bool | None = None,
                  executor: str = "local", address: str | None = None) -> None:
    """`retry`: stored statuses `run --retry` would train again (counted as to train);
    `fuse`: None unless GANBENCH_NO_FUSE=1 (as `run_cells`); `executor="ray"`: as Ray would
    run it, on the cluster at `address` (connected to and left) or a local Ray's CPUs."""
    from bench.schedule.executor import visible_gpus
    from bench.schedule.placement import plan
    from bench.schedule.runner import disallowed_record

    stored: dict[str, str] = {}
    if (store_root / "results.sqlite").is_file():
        from bench.store import Store

        with Store(store_root, create=False) as store:
            stored = {r.cell_id: r.status for r in store.records()}
    cells = {c.cell_id: c for c in grid.cells}
    blocked = {cid: disallowed_record(c) for cid, c in cells.items()}
    print(f"grid '{grid.name}': {grid.description}")
    print(f"{len(cells)} cells; store {store_root}")
    table: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for m in grid.members:
        cid = m["cell_id"]
        status = stored.get(cid) or (blocked[cid].status if blocked[cid] else "to train")
        if cid in stored and stored[cid] in retry and blocked[cid] is None:
            status = f"{status} (to train again)"
        table[(m["dataset"], m["design"])][status] += 1
    print(f"\n{'dataset':<16} {'design':<22} cells by status (stored, or what will happen)")
    for (dataset, design), counts in table.items():
        shown = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        print(f"{dataset:<16} {design:<22} {shown}")
    reasons = {}
    for cid, rec in blocked.items():
        if rec is not None:
            reasons.setdefault((cells[cid].data.name, rec.label, rec.status), rec.reason)
    if reasons:
        print("\nnot trained (stored as such, with the reason):")
        for (dataset, label, status), reason in reasons.items():
            print(f"  {dataset:<14} {label:<40} {status}: {reason}")
    for dataset, res in grid.spec.get("resolution", {}).items():
        print(f"\nleave-one-out on {dataset}: full set (rule: {res['rule']}): "
              f"{', '.join(res['kept']) or 'none'}")
        for trick, why in res["dropped"].items():
            print(f"  dropped {trick}: {why}")
    for dataset, gens in grid.spec.get("generators", {}).items():
        frac = {k: grid.spec[k][dataset] for k in ("runs", "k", "p", "letters", "unestimable")}
        print(f"\nfractional factorial on {dataset}: 2^({frac['k']}-{frac['p']}) = "
              f"{frac['runs']} runs; letters "
              + ", ".join(f"{a}={t}" for a, t in frac["letters"].items()))
        print(f"  generators: {'; '.join(gens)}")
        print(f"  aliases of main effects: "
              + "; ".join(a for a in grid.spec["aliases"][dataset] if len(a.split()[0]) == 1))
        if frac["unestimable"]:
            print(f"  not estimable (runs stored as conflict): {', '.join(frac['unestimable'])}")
    if grid.spec.get("tune") and not grid.plans:
        print(f"\nLR tuning: every variant at lr {grid.spec['tune']['lr']} (same seeds)")
    lines, eval_cells = stage2_lines(grid, store_root, stored)
    for line in lines:
        print(line)
    # as run_cell decides: not stored, or stored with a retried status; never a blocked cell
    todo = {cid for cid in cells
            if (cid not in stored or stored[cid] in retry) and blocked[cid] is None}
    eval_blocked = {c.cell_id for c in eval_cells if c.cell_id not in cells
                    and disallowed_record(c) is not None}
    todo |= {c.cell_id for c in eval_cells
             if (c.cell_id not in stored or stored[c.cell_id] in retry)
             and c.cell_id not in eval_blocked and c.cell_id not in blocked}
    gpus = visible_gpus()
    if executor == "ray":  # Ray's units: the cluster's CPUs are its workers
        from bench.schedule.ray_executor import expected_cluster_size

        workers, gpus = expected_cluster_size(address)
    from bench.schedule.staged import longest_first  # the order run_staged hands cells out

    lines = fused_lines(longest_first([c for c in grid.cells if c.cell_id in todo]),
                        workers=workers, device=device, gpus=gpus, fuse=fuse, executor=executor)
    if lines and grid.plans:
        lines[1] += " (stage 1; stage 2's cells are grouped the same way when it runs)"
    for line in lines:
        print(line)
    if gpus:
        places = Counter(plan([dataset_kind(cells[c].data.name) for c in todo], gpus=gpus,
                              device=device, cells_per_gpu=1))
        if executor == "ray":  # Ray picks each task's GPU (bench/schedule/ray_executor.py)
            merged: Counter = Counter()
            for d, n in places.items():
                merged["a GPU Ray picks" if str(d).startswith("cuda") else d] += n
            places = merged
        print("\nplacement: " + ", ".join(f"{n} on {d}" for d, n in sorted(places.items())))
    seconds, calibrated, borrowed = estimate_seconds(grid, todo, store_root, eval_cells)
    workers = max(1, workers)
    line = (f"\nto train: {len(todo)} cells; estimated {seconds / workers / 60:.1f} min with "
            f"{workers} worker(s) (cells' own time, an ideal pool)")
    if calibrated:
        line += (f"; {calibrated} cells timed from the calibrated per-step costs of "
                 f"bench/schedule/step_costs.py (idle reference machine, 1 thread; no comparable cell "
                 f"is stored)")
    if borrowed:
        line += (f"; {borrowed} timed from other variants' cells (no stored cell of "
                 f"their own variant), which a costly trick can exceed several times")
    print(line + "." if todo else "\nnothing to train: every cell is stored.")
