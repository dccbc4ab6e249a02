"""The tables of one grid design on one dataset (the Δ table, then what the design adds: pair
interactions, factorial effects, each variant at its best LR, or how held-out tuning chose each
setting), and writing every table of a report."""
from __future__ import annotations

import json

import pandas as pd

from bench.report import references, tuned, views
from bench.report.build.contents import Report
from bench.report.tables import Table

FACTORIAL = ("factorial", "fractional-factorial")


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


def write_tables(report: Report) -> None:
    """Every table (study tables first) as Markdown, LaTeX and CSV under `tables/`."""
    for t in report.study_tables + report.tables:
        t.write(report.out / "tables")
