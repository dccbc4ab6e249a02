"""`write_report`: every table and figure of a store, and an index.md that links them and states
the protocol. Reads records only through `bench.store.results.load_table`; imports no torch.

The work is split by job: `load` (the rows, reference rows and validity flags), `design_tables`
(the tables of each grid design, and writing them), `shortfalls` (what the grids asked for that
is not shown), `renderer` (figures drawn in a pool of forked workers), `figure_jobs` (the figures
submitted to it, and their listing), `sample_sheets`, `index_page` (index.md), `stems` (file
names), `published_tables` (the suite beside a published table) and `contents` (the Report they
fill). `_write_report` below runs them in order."""
from __future__ import annotations

import time
from pathlib import Path

from bench.report import figures, study, views
from bench.report.build.contents import Report
from bench.report.build.design_tables import (FACTORIAL, design_tables, held_out_tables,
                                              write_tables)
from bench.report.build.figure_jobs import (Job, curve_figures, design_figures, list_figures,
                                            summary_figure)
from bench.report.build.index_page import write_index
from bench.report.build.load import LOG, load_rows
from bench.report.build.published_tables import add_published
from bench.report.build.renderer import Renderer, default_workers
from bench.report.build.sample_sheets import sample_sheet_jobs, sheets_done
from bench.report.build.shortfalls import lacking_text, shortfalls
from bench.report.build.stems import Stems
from bench.store.results import TUNE_METRIC, headline_metrics, kind_of

__all__ = ["FACTORIAL", "LOG", "Renderer", "Report", "default_workers", "design_tables",
           "held_out_tables", "shortfalls", "write_index", "write_report"]


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
    df, catalog, refs = load_rows(store, grid, image_references, started)
    out = Path(out)
    figs = out / "figures"
    report = Report(out, df=df, lacking=shortfalls(df, catalog), catalog=catalog)
    summary_panels = []
    stem_of = Stems()
    renderer = Renderer(workers)
    jobs: list[Job] = []  # figures, submitted as their tables are made; listed in this order
    try:
        for (grid_name, data), pool in df.groupby(["grid", "data"], sort=False):
            spec = catalog.grids.get(grid_name, {})
            headline = headline_metrics(pool)
            where = data + (f" (grid {grid_name})" if grid_name else "")
            claim = views.primary_of(spec, pool["dataset"].iloc[0])  # None: every headline
            primary = claim or TUNE_METRIC[kind_of(pool)]  # graded, where modes often tie
            primary = primary if primary in headline else (headline or [None])[0]
            for design, part in pool.groupby("design", sort=False):
                stem = stem_of(grid_name or "store", data, design)
                title = f"{data}, {design}" + (f" (grid {grid_name})" if grid_name else "")
                tables = design_tables(stem, title, part, pool, catalog.metrics, headline, spec,
                                       bootstrap, refs.get(data))
                short = report.lacking.get((grid_name, part["dataset"].iloc[0], design))
                if short:
                    tables[0].notes.append(lacking_text(short, grid_name))
                report.tables += tables
                jobs += design_figures(renderer, figs, stem, title, design, tables, headline,
                                       claim, primary)
                if design in ("add-one", "baseline", "cells"):
                    summary_panels.append((title, tables[0].numbers, headline, claim))
            jobs += curve_figures(renderer, figs, stem_of(grid_name or "store", data), where,
                                  pool, refs.get(data))
        jobs.insert(0, summary_figure(renderer, figs, summary_panels))  # the one seen first
        sheets = sample_sheet_jobs(df, out / "samples", Stems(), renderer) if samples else []
        # verdict, aggregates, profiles, power (their figures drawn here, while the workers draw)
        study.add_to_report(report, figs, bootstrap)
        add_published(report, refs, stem_of)  # after the power table, which reads report.tables
        write_tables(report)
        list_figures(jobs, report)
        LOG.debug(f"report: {len(report.study_tables) + len(report.tables)} tables and "
                  f"{len(report.figures)} figures after "
                  f"{time.perf_counter() - started:.1f} s")
        if samples:
            report.samples = sheets_done(sheets)
            LOG.debug(f"report: {len(report.samples)} sample sheets after "
                      f"{time.perf_counter() - started:.1f} s")
    finally:
        renderer.close()
    write_index(report, command=command, seconds=time.perf_counter() - started)
    return report
