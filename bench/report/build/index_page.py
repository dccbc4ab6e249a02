"""index.md: what a report holds and how it was made (the verdict, the protocol per grid and
dataset, links to every figure and table, what the grids asked for that is not shown, the
sample sheets)."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from bench.core.config import TrainConfig
from bench.report import figures
from bench.report.build.contents import Report
from bench.report.build.shortfalls import seeds_text
from bench.report.tables import num
from bench.store.results import kind_of


def protocol_lines(df: pd.DataFrame) -> list[str]:
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
            f"{', '.join(f'{d} {design_names(n)}' for d, n in (spec.get('designs') or {}).items())}; cells "
            f"trained by `{spec.get('command') or 'ganbench run --grid ' + g}`)."
            for g, spec in report.catalog.grids.items() if g in set(df["grid"])]
        lines += ["## Protocol", ""] + grid_lines + protocol_lines(df) + [
            f"- Compute in the records: {train / 60:.1f} min of train + eval + curve time over "
            f"{len(cells)} cells; first to last record {span / 60:.1f} min of wall time.",
            f"- Versions: {', '.join(f'{k} {v}' for k, v in json.loads(versions.most_common(1)[0][0]).items())}"
            + (f"; tricks not at version 1: {', '.join(trick_versions)}" if trick_versions else "")
            + ". Only records of the installed trick versions and each dataset's prevailing "
              "metric protocol are shown.",
            f"- Devices: {', '.join(f'{k} ({v} cells)' for k, v in Counter(d for d in cells['device'] if d).items())}.",
            f"- This report took {seconds:.1f} s to build.", ""]
    if report.published:  # bench/report/build/published_tables.py
        lines += ["## Against the published table", "",
                  "Each mapped row of the grid's `[published]` table beside the paper's value "
                  "(paper: its own spread; suite: mean ± standard error over the seeds), with "
                  "both budgets, validity flags, chance and true-data rows, and whether each "
                  "difference the paper compares has the same sign in the suite:", ""]
        lines += report.published + [""]
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
        lacking.append(f"- {dataset}, {design} (grid {grid}): {seeds_text(short)}" + (
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


def design_names(designs) -> str:
    """A dataset's design(s): the grid spec holds a name, or a list when a grid has several."""
    return " + ".join(designs) if isinstance(designs, (list, tuple)) else str(designs)
