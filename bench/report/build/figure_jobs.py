"""The figures of a report's tables and curves, submitted to the Renderer as they are made, and
their listing once drawn: each job is (future of a figure function's paths, what they show: a
line, or paths -> [(png, line)])."""
from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Callable

import pandas as pd

from bench.report import figures, references
from bench.report.build.contents import Report, add_pngs
from bench.report.build.renderer import Renderer
from bench.report.tables import Table

Job = tuple[Future, str | Callable]


def design_figures(renderer: Renderer, figs: Path, stem: str, title: str, design: str,
                   tables: list[Table], headline: list[str], claim: str | None,
                   primary: str | None) -> list[Job]:
    """The forest plot of a design's Δ table, and the heatmap of its pair interactions."""
    main = tables[0].numbers
    label = "Δ(all − row)" if design == "leave-one-out" else "Δ vs baseline"
    jobs: list[Job] = [(renderer.submit(figures.forest, main, headline,
                                        figs / f"forest-{stem}", title, label=label,
                                        primary=claim),
                        f"forest plot of Δ with 95% CIs, {title}")]
    for t in tables:
        if t.name.endswith("-interactions") and primary:
            jobs.append((renderer.submit(
                figures.interaction_heatmap, t.numbers, primary,
                figs / f"interactions-{stem}", title),
                f"pair interactions on {primary}, {title}"))
    return jobs


def curve_figures(renderer: Renderer, figs: Path, stem: str, where: str, pool: pd.DataFrame,
                  refs: references.References | None) -> list[Job]:
    """A dataset's metric curves (one figure per metric, with the reference lines) and loss
    curves, per variant with a band over seeds."""
    curves = figures.long_curves(pool.drop_duplicates("cell_id"))

    def listed(paths: list[Path]) -> list[tuple[Path, str]]:  # a figure per metric
        return [(p, f"{p.stem.rsplit('-eval_', 1)[-1]} vs step per variant, band over seeds, "
                    f"{where}") for p in paths]

    metric_curves = renderer.submit(figures.metric_curves, None, figs / f"curves-{stem}", where,
                                    references.curve_lines(refs), data=curves)
    loss_curves = renderer.submit(figures.loss_curves, None, figs / f"losses-{stem}", where,
                                  data=curves)
    return [(metric_curves, listed), (loss_curves, f"loss terms vs step per variant, {where}")]


def summary_figure(renderer: Renderer, figs: Path, panels: list) -> Job:
    """The figure a reader sees first."""
    return (renderer.submit(figures.summary, panels, figs / "summary"),
            "summary: Δ vs baseline of every trick on every headline metric, per dataset")


def list_figures(jobs: list[Job], report: Report) -> None:
    """Wait for each job in order and list its PNGs in `report.figures`."""
    for future, what in jobs:
        paths = Renderer.result(future)
        if isinstance(what, str):
            add_pngs(report.figures, paths, what)
        else:
            report.figures += [(p, w) for p, w in what(paths) if p.suffix == ".png"]
