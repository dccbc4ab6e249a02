"""`write_report`: every table and figure of a store, and an index.md that links them and states
the protocol. Reads records only through `bench.store.results.load_table`; imports no torch."""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import multiprocessing
import os
import re
import signal
import sys
import time
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from bench.core.config import TrainConfig
from bench.report import figures, references, study, tuned, validity, views
from bench.report.tables import Table, num
from bench.store import CELL_ID
from bench.store.results import TUNE_METRIC, Catalog, headline_metrics, kind_of, load_table

FACTORIAL = ("factorial", "fractional-factorial")
LOG = logging.getLogger("ganbench")  # `ganbench -v report` says where the time goes


@dataclass
class Report:
    out: Path
    tables: list[Table] = field(default_factory=list)
    figures: list[tuple[Path, str]] = field(default_factory=list)  # (png, one line)
    samples: list[tuple[Path, str]] = field(default_factory=list)
    df: pd.DataFrame | None = None
    lacking: dict = field(default_factory=dict)  # `shortfalls` of the grids
    catalog: Catalog = field(default_factory=Catalog)  # what the grids asked for
    verdict: list[str] = field(default_factory=list)  # index.md opens with it (bench.report.study)
    study_tables: list[Table] = field(default_factory=list)  # verdict, aggregates, power


def _slug(*parts: str) -> str:
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


class _Stems:
    """File stems unique within one report: parts that join to the same stem (`a-b`+`c` and
    `a`+`b-c`) get a hash of all parts after the first (the stem keeps its `-<design>` end,
    which `compare` looks for)."""

    def __init__(self) -> None:
        self.owner: dict[str, tuple[str, ...]] = {}

    def __call__(self, *parts: str) -> str:
        stem = _slug(*parts)
        if self.owner.setdefault(stem, parts) != parts:
            first = _slug(parts[0])
            tag = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:6]
            stem = f"{first}_{tag}{stem[len(first):]}"
            self.owner[stem] = parts
        return stem


def held_out_tables(stem: str, title: str, part: pd.DataFrame, pool: pd.DataFrame,
                    metrics: list[str], headline: list[str], bootstrap: bool,
                    primary: str | None = None) -> list[Table]:
    """A grid with held-out tuning (bench/report/tuned.py): the design table on the evaluation
    seeds (Δ against the baseline at its own chosen setting), then how each setting was chosen
    with the optimistic same-seed Δ beside it."""
    evals = tuned.held_out_rows(part)
    main = views.delta_table(stem, f"{title}: held out", evals, pool, metrics, headline,
                             reference=tuned.held_out_baseline, bootstrap=bootstrap,
                             notes=[tuned.held_out_note(evals)] if len(evals) else [],
                             primary=primary)
    choice = tuned.tuning_table(f"{stem}-tuning", f"{title}: settings chosen on the tuning "
                                f"seeds, and the optimistic same-seed view", part, headline,
                                bootstrap=bootstrap)
    return [main] + ([choice] if choice is not None else [])


def design_tables(stem: str, title: str, part: pd.DataFrame, pool: pd.DataFrame,
                  metrics: list[str], headline: list[str], spec: dict,
                  bootstrap: bool, refs: references.References | None = None) -> list[Table]:
    design = part["design"].iloc[0]
    primary = views.primary_of(spec, part["dataset"].iloc[0])  # None: every headline a claim
    if tuned.is_held_out(part):
        out = held_out_tables(stem, title, part, pool, metrics, headline, bootstrap, primary)
        if refs is not None:  # chance and true-data rows under the variants
            references.append_rows(out[0], refs)
        return out
    evals_budget = spec.get("budget") == "evals"
    resolution = views.for_dataset(spec.get("resolution"), part["dataset"].iloc[0])
    out = []
    if design == "leave-one-out":
        out.append(views.delta_table(stem, title, part, pool, metrics, headline,
                                     reference=views.all_of, reverse=True,
                                     row_name=views.leave_one_out_name(part),
                                     delta_label="Δ(all − row)", bootstrap=bootstrap,
                                     notes=["Δ(all − row): what the missing trick adds on top "
                                            "of the others (positive = the metric is higher "
                                            "with it)."] + ([f"Conflict resolution: "
                                            f"{json.dumps(resolution)}"] if resolution else []),
                                     primary=primary))
    else:
        out.append(views.delta_table(stem, title, part, pool, metrics, headline,
                                     reference=tuned.budget_baseline if evals_budget
                                     else views.baseline_of, bootstrap=bootstrap,
                                     primary=primary))
    if refs is not None:  # chance and true-data rows under the variants
        references.append_rows(out[0], refs)
    if design == "pairs":
        out.append(views.pairs_table(f"{stem}-interactions", f"{title}: interactions", part, pool,
                                     headline, bootstrap=bootstrap))
    if design in FACTORIAL:
        effects = views.factorial_table(f"{stem}-effects", f"{title}: effects", part, headline, spec)
        if effects is not None:
            out.append(effects)
    if part["tune_lr"].notna().any():
        base_lr = views.for_dataset(spec.get("base_lr"), part["dataset"].iloc[0])
        table = views.tuned_table(f"{stem}-tuned", f"{title}: each variant at its best LR "
                                  f"(optimistic: selected and reported on the same seeds)", part,
                                  headline, bootstrap=bootstrap,
                                  base_lr=base_lr if isinstance(base_lr, float) else None)
        if table is not None:
            out.append(table)
    return out


def shortfalls(df: pd.DataFrame, catalog: Catalog) -> dict[tuple[str, str, str], list[tuple[str, int, int, int]]]:
    """What the grids asked for that has no current record (a run in progress, one trained part
    by part with `run --only`, or records of another protocol or trick version): for each (grid,
    dataset, design), (variant, current, asked, stored under another protocol or trick version)
    per variant short of seeds, in grid order."""
    have = set(df["cell_id"])
    stored = set(catalog.stored_ids) - have
    asked: dict[tuple[str, str, str], dict[str, list[str]]] = {}
    for m in catalog.members:
        per_variant = asked.setdefault((m["grid"], m["dataset"], m["design"]), {})
        per_variant.setdefault(m["info"].get("label", "?"), []).append(m["cell_id"])
    out = {}
    for key, per_variant in asked.items():
        short = [(label, sum(c in have for c in ids), len(ids), sum(c in stored for c in ids))
                 for label, ids in per_variant.items() if not set(ids) <= have]
        if short:
            out[key] = short
    return out


def _seeds_text(short: list[tuple[str, int, int, int]]) -> str:
    return ", ".join(f"{label} {k}/{n} seeds" for label, k, n, _ in short)


def _lacking_text(short: list[tuple[str, int, int, int]], grid: str) -> str:
    """A table's note on the cells it lacks: not stored at all (`status` lists them), or stored
    under another protocol or trick version (which `status` counts as done)."""
    other = sum(o for *_, o in short)
    missing = sum(n - k for _, k, n, _ in short) - other
    listed = f"`ganbench status --grid {grid}` lists them"
    if not other:
        return f"Not stored yet ({missing} cell(s); {listed}): {_seeds_text(short)}."
    why = f"stored under another protocol or trick version: {other}"
    if missing:
        why = f"not stored yet: {missing}, {listed}; {why}"
    return f"Not shown ({missing + other} cell(s); {why}): {_seeds_text(short)}."


def _add(listing: list, paths: list[Path], what: str) -> None:
    """Index the PNG of a figure (its PDF sits beside it)."""
    listing.extend((p, what) for p in paths if p.suffix == ".png")


def default_workers() -> int:
    """Figure-rendering processes: the CPUs this process may use, at most 4; 1 (in this
    process) where processes cannot be forked."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


def _quietly(fn: Callable, args: tuple, kw: dict) -> tuple[Any, str]:
    """Run a figure job in a worker; what it says on stderr (a bad sample file's warning)
    comes back with its result, for the parent to print."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        return fn(*args, **kw), err.getvalue()


class Renderer:
    """Where the figures are drawn and saved (rendering is most of a report's time): a pool of
    forked worker processes, or this process with `workers` 1 or while `figures.ON_SAVE` has
    hooks (the layout test inspects every figure in the process that draws it). `submit` takes
    a figure function and its arguments and gives a future of what it returns; the report
    waits on them in order, so its listing is the same either way."""

    def __init__(self, workers: int | None = None) -> None:
        workers = default_workers() if workers is None else workers
        self.pool = None
        if workers > 1 and not figures.ON_SAVE:
            # Ctrl-C reaches the report's process, which cancels what has not started
            self.pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"),
                                            initializer=signal.signal,
                                            initargs=(signal.SIGINT, signal.SIG_IGN))

    def submit(self, fn: Callable, *args, **kw) -> Future:
        if self.pool is not None:
            return self.pool.submit(_quietly, fn, args, kw)
        done: Future = Future()
        done.set_result((fn(*args, **kw), ""))
        return done

    @staticmethod
    def result(future: Future) -> Any:
        value, said = future.result()
        if said:
            print(said, end="", file=sys.stderr, flush=True)
        return value

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def _sample_sheet_jobs(df: pd.DataFrame, folder: Path, stem_of,
                       renderer: Renderer) -> list[tuple[Future, str]]:
    """Submit one titled contact sheet per variant (row label) and dataset, a panel per seed,
    from the sample files the scored cells wrote; with several grids a variant of each grid's
    setup gets its own sheet. (future, title) per sheet, in order."""
    cells = df.drop_duplicates("cell_id")
    cells = cells[cells["status"] == "done"]
    several = df["grid"].nunique() > 1  # the same variant may be in two grids' setups
    out: list[tuple[Future, str]] = []
    keys = ["grid"] * several + ["data", "row_label", "setup_id"]
    groups = list(cells.groupby(keys, sort=False))
    setups = Counter(tuple(k[:-1]) for k, _ in groups)
    for key, part in groups:
        grid_name = key[0] if several else ""
        data, label, setup = key[-3:]
        part = part.sort_values("seed")
        files = [(f"seed {int(seed)}", Path(cell_dir) / "samples.npz")
                 for seed, cell_id, cell_dir in zip(part["seed"], part["cell_id"], part["cell_dir"])
                 if CELL_ID.fullmatch(str(cell_id))]  # never a path from store text
        files = [(t, f) for t, f in files if f.exists()]
        if not files:
            continue
        title = f"{data} {label}" + (f" (grid {grid_name})" if grid_name else "") + (
            f" (setup {setup})" if setups[tuple(key[:-1])] > 1 else "")
        stem = stem_of(data, label, grid_name, setup if setups[tuple(key[:-1])] > 1 else "")
        out.append((renderer.submit(figures.sample_sheet, files, folder / stem, title), title))
    return out


def _sheets_done(jobs: list[tuple[Future, str]]) -> list[tuple[Path, str]]:
    sheets: list[tuple[Path, str]] = []
    for future, title in jobs:
        paths, drawn = Renderer.result(future)
        _add(sheets, paths, f"{title}, seeds {', '.join(t.split()[-1] for t in drawn)}")
    return sheets


def write_report(store, out, *, grid: str | list[str] | None = None, bootstrap: bool = False,
                 command: str = "", samples: bool = True, image_references: bool = False,
                 pdf: bool = True, workers: int | None = None) -> Report:
    """pdf: a PDF beside every figure's PNG (vector figures; sample sheets hold their pixels);
    workers: figure-rendering processes (default_workers(); 1 = in this process)."""
    started = time.perf_counter()
    was, figures.style.PDF = figures.style.PDF, pdf  # before the workers fork
    try:
        return _write_report(store, out, grid=grid, bootstrap=bootstrap, command=command,
                             samples=samples, image_references=image_references,
                             workers=workers, started=started)
    finally:
        figures.style.PDF = was


def _write_report(store, out, *, grid, bootstrap, command, samples, image_references, workers,
                  started) -> Report:
    df, catalog = load_table(store, grid=grid)
    LOG.debug(f"report: {df['cell_id'].nunique()} current cells, {len(df)} grid memberships "
              f"read in {time.perf_counter() - started:.1f} s")
    # {data: chance and true-data rows}; image sets' scored on a miss only when asked
    refs = references.for_records(df, compute=True if image_references else None)
    df = validity.add_flags(df, refs, headline_metrics)  # d_at_chance, at_chance
    out = Path(out)
    figs = out / "figures"
    report = Report(out, df=df, lacking=shortfalls(df, catalog), catalog=catalog)
    metrics = catalog.metrics
    specs = catalog.grids
    summary_panels = []
    stem_of = _Stems()
    renderer = Renderer(workers)
    # (future of a figure function's paths, what they show: a line, or paths -> [(png, line)])
    pending: list[tuple[Future, str | Callable]] = []
    try:
        for (grid_name, data), pool in df.groupby(["grid", "data"], sort=False):
            spec = specs.get(grid_name, {})
            headline = headline_metrics(pool)
            where = data + (f" (grid {grid_name})" if grid_name else "")
            claim = views.primary_of(spec, pool["dataset"].iloc[0])  # None: every headline
            primary = claim or TUNE_METRIC[kind_of(pool)]  # graded, where modes often tie
            primary = primary if primary in headline else (headline or [None])[0]
            for design, part in pool.groupby("design", sort=False):
                stem = stem_of(grid_name or "store", data, design)
                title = f"{data}, {design}" + (f" (grid {grid_name})" if grid_name else "")
                tables = design_tables(stem, title, part, pool, metrics, headline, spec,
                                       bootstrap, refs.get(data))
                short = report.lacking.get((grid_name, part["dataset"].iloc[0], design))
                if short:
                    tables[0].notes.append(_lacking_text(short, grid_name))
                report.tables += tables
                main = tables[0].numbers
                label = "Δ(all − row)" if design == "leave-one-out" else "Δ vs baseline"
                pending.append((renderer.submit(figures.forest, main, headline,
                                                figs / f"forest-{stem}", title, label=label,
                                                primary=claim),
                                f"forest plot of Δ with 95% CIs, {title}"))
                if design in ("add-one", "baseline", "cells"):
                    summary_panels.append((title, main, headline, claim))
                for t in tables:
                    if t.name.endswith("-interactions") and primary:
                        pending.append((renderer.submit(
                            figures.interaction_heatmap, t.numbers, primary,
                            figs / f"interactions-{stem}", title),
                            f"pair interactions on {primary}, {title}"))
            rows = pool.drop_duplicates("cell_id")
            stem = stem_of(grid_name or "store", data)
            curves = figures._long_curves(rows)
            pending.append((renderer.submit(
                figures.metric_curves, None, figs / f"curves-{stem}", where,
                references.curve_lines(refs.get(data)), data=curves),
                lambda paths, where=where: [
                    (p, f"{p.stem.rsplit('-eval_', 1)[-1]} vs step per variant, band over "
                        f"seeds, {where}") for p in paths]))
            pending.append((renderer.submit(figures.loss_curves, None,
                                            figs / f"losses-{stem}", where, data=curves),
                            f"loss terms vs step per variant, {where}"))
        # the figure a reader sees first
        pending.insert(0, (renderer.submit(figures.summary, summary_panels, figs / "summary"),
                           "summary: Δ vs baseline of every trick on every headline metric, "
                           "per dataset"))
        sheets = _sample_sheet_jobs(df, out / "samples", _Stems(), renderer) if samples else []
        # verdict, aggregates, profiles, power (their figures drawn here, while the workers draw)
        study.add_to_report(report, figs, bootstrap)
        for t in report.study_tables + report.tables:
            t.write(out / "tables")
        for future, what in pending:
            paths = Renderer.result(future)
            if isinstance(what, str):
                _add(report.figures, paths, what)
            else:
                report.figures += [(p, w) for p, w in what(paths) if p.suffix == ".png"]
        LOG.debug(f"report: {len(report.study_tables) + len(report.tables)} tables and "
                  f"{len(report.figures)} figures after "
                  f"{time.perf_counter() - started:.1f} s")
        if samples:
            report.samples = _sheets_done(sheets)
            LOG.debug(f"report: {len(report.samples)} sample sheets after "
                      f"{time.perf_counter() - started:.1f} s")
    finally:
        renderer.close()
    write_index(report, command=command, seconds=time.perf_counter() - started)
    return report


def _protocol_lines(df: pd.DataFrame) -> list[str]:
    lines = []
    for dataset, rows in df.drop_duplicates("cell_id").groupby("data", sort=False):
        done = rows[rows["status"] == "done"]
        proto = done["protocol"].iloc[0] if len(done) else {}
        budget = ", ".join(sorted({f"{int(s)} steps × batch {int(b)}, " + (
            f"lr {num(lr)}" if lr == lr_d else f"lr G {num(lr)} / D {num(lr_d)}") + (
            "" if g_loss == TrainConfig.g_loss else f", G loss {g_loss}")
            for s, b, lr, lr_d, g_loss in zip(rows["steps"], rows["batch_size"], rows["lr"],
                                              rows["lr_d"], rows["g_loss"])
            if pd.notna(s)}))
        seeds = sorted(set(int(s) for s in rows["seed"]))
        extractor = proto.get("extractor", "PacGAN 2-D mode protocol" if kind_of(rows) == "2d" else "?")
        n = proto.get("num_generated", "?")
        ref = proto.get("num_reference")
        lines.append(f"- **{dataset}** ({kind_of(rows)}): {budget}; seeds {seeds}; "
                     f"{len(rows)} cells ({', '.join(f'{k} {v}' for k, v in Counter(rows['status']).items())}); "
                     f"metrics by {extractor}, N = {n}" + (f" vs {ref} reference" if ref else "") + ".")
    return lines


def write_index(report: Report, *, command: str, seconds: float) -> Path:
    df = report.df
    out = report.out
    cells = df.drop_duplicates("cell_id") if len(df) else df
    lines = ["# ganbench report", ""]
    if command:
        lines += [f"Made with `{command}`.", ""]
    lines += report.verdict  # the verdict table first (bench.report.study)
    if cells.empty:
        lines += ["The store holds no current records.", ""]
    else:
        train = cells[["train_s", "eval_s", "curve_s"]].fillna(0).to_numpy().sum()
        span = cells["created_at"].max() - cells["created_at"].min()
        versions = Counter(json.dumps(v, sort_keys=True) for v in cells["versions"])
        trick_versions = sorted({f"{k} v{v}" for tv in cells["trick_versions"] for k, v in tv.items()
                                 if v != 1})
        grid_lines = [
            f"- Grid `{g}`: {spec.get('description', '')} (designs: "
            f"{', '.join(f'{d} {_names(n)}' for d, n in (spec.get('designs') or {}).items())}; cells "
            f"trained by `{spec.get('command') or 'ganbench run --grid ' + g}`)."
            for g, spec in report.catalog.grids.items() if g in set(df["grid"])]
        lines += ["## Protocol", ""] + grid_lines + _protocol_lines(df) + [
            f"- Compute in the records: {train / 60:.1f} min of train + eval + curve time over "
            f"{len(cells)} cells; first to last record {span / 60:.1f} min of wall time.",
            f"- Versions: {', '.join(f'{k} {v}' for k, v in json.loads(versions.most_common(1)[0][0]).items())}"
            + (f"; tricks not at version 1: {', '.join(trick_versions)}" if trick_versions else "")
            + ". Only records of the installed trick versions and each dataset's prevailing "
              "metric protocol are shown.",
            f"- Devices: {', '.join(f'{k} ({v} cells)' for k, v in Counter(d for d in cells['device'] if d).items())}.",
            f"- This report took {seconds:.1f} s to build.", ""]
    lines += ["## Figures", ""]
    pdf = " (+ .pdf)" if figures.style.PDF else ""
    for png, what in report.figures:
        rel = png.relative_to(out)
        lines.append(f"- [{rel}]({rel}){pdf}: {what}.")
    lines += ["", "## Tables", "",
              "Each as Markdown (linked), LaTeX booktabs fragment (.tex) and CSV (.csv, every "
              "number unformatted).", ""]
    for t in report.study_tables + report.tables:
        lines.append(f"- [tables/{t.name}.md](tables/{t.name}.md): {t.title}.")
    lacking, others = [], 0
    for (grid, dataset, design), short in report.lacking.items():
        other = sum(o for *_, o in short)
        others += other
        lacking.append(f"- {dataset}, {design} (grid {grid}): {_seeds_text(short)}" + (
            f" (stored under another protocol or trick version: {other})" if other else "") + ".")
    if lacking and not others:
        lines += ["", "## Not stored yet", "",
                  "What the grids asked for that has no current record (a run in progress, or "
                  "one trained part by part with `ganbench run --only`):", ""] + lacking
    elif lacking:
        lines += ["", "## Not shown", "",
                  "What the grids asked for that has no current record: not stored yet (a run "
                  "in progress, or one trained part by part with `ganbench run --only`), or "
                  "stored under another metric protocol (`ganbench eval` re-scores it) or "
                  "trick version (retrain it):", ""] + lacking
    if report.samples:
        lines += ["", "## Samples", "",
                  "One sheet per variant and dataset, a panel per seed, from the sample file "
                  "each cell wrote when it was scored (images: 64 samples; 2-D: the points it "
                  "was scored on, red + = mode centres).",
                  ""]
        lines += [f"- [{p.relative_to(out)}]({p.relative_to(out)}){pdf}: {what}"
                  for p, what in report.samples]
    path = out / "index.md"
    out.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _names(designs) -> str:
    """A dataset's design(s): the grid spec holds a name, or a list when a grid has several."""
    return " + ".join(designs) if isinstance(designs, (list, tuple)) else str(designs)
