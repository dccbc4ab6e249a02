"""The suite's rows beside the published table they reproduce (a grid's `[published]` mapping,
bench/core/published.py): each mapped dataset and row, the paper's value ± its spread next to
the suite's mean ± standard error over its seeds, with both budgets and the suite row's validity
flags, the chance and true-data reference rows, and for each pair of rows the paper compares
whether the sign of the difference agrees. Mechanical statements only: no test, no verdict (the
design tables give intervals and p-values)."""
from __future__ import annotations

import math
from fractions import Fraction

import pandas as pd

from bench.core.published import PublishedTable, load_published
from bench.report import stats, validity, views
from bench.report.references import References
from bench.report.rows import by_seed
from bench.report.tables import Cell, Table, count, num

NO_COMPARISON = "suite row degenerate: no comparison"
NOT_STORED = "suite row not stored: no comparison"
DIRECTION_NOTE = ("Direction: the sign of the paper's difference of means against the sign of "
                  "the suite's mean paired difference (seeds both rows share); no test is made "
                  "(the design tables give intervals and p-values), and a degenerate suite row "
                  "gets no comparison.")


def suite_rows(part: pd.DataFrame, label: str) -> pd.DataFrame:
    """One dataset's scored cells of one variant (row label), one row per cell."""
    rows = part[part["row_label"] == label].drop_duplicates("cell_id")
    return rows[rows["status"] == "done"]


def mean_se(values) -> tuple[float, float, int]:
    """Mean, standard error (stats.mean_std's sd over √n; NaN for one value) and n of the finite
    values."""
    mean, sd, n = stats.mean_std(values)
    return mean, sd / math.sqrt(n) if n else math.nan, n


def value_text(mean: float, spread: float | None, unit: str) -> str:
    if not math.isfinite(mean):
        return "–"
    text = num(mean) if spread is None else f"{num(mean)} ± {num(spread)}"
    return f"{text} {unit}".rstrip()


def budget_text(steps: list[int], paper: int | None) -> str:
    """'2,000 (1/200 of 400,000)'; the paper's share only where the paper states a budget."""
    own = ", ".join(count(s) for s in steps) or "–"
    if paper is None or len(steps) != 1:
        return own
    share = Fraction(steps[0], paper)
    ratio = f"1/{share.denominator // share.numerator}" if share.numerator and \
        share.denominator % share.numerator == 0 else f"{float(share):.3g} ×"
    return f"{own} ({ratio} of {count(paper)})"


def _paper_steps(table: PublishedTable) -> str:
    return count(table.budget_steps) if table.budget_steps is not None else "not stated"


def in_table_order(mapping: dict, table: PublishedTable) -> tuple[list, list]:
    """(datasets, rows) of the mapping in the table's column and row order: the stored grid spec
    is JSON with sorted keys, which would put grid25 before ring8."""
    cols = [c.key for c in table.columns]
    rows = list(table.rows)
    datasets = sorted(mapping["datasets"].items(), key=lambda kv: cols.index(kv[1]))
    variants = sorted(mapping["rows"].items(), key=lambda kv: rows.index(kv[1]))
    return datasets, variants


def values_table(stem: str, grid: str, mapping: dict, pool: pd.DataFrame,
                 refs: dict[str, References]) -> Table:
    """The paper's and the suite's rows, per mapped dataset, then that dataset's reference rows.
    The CSV is long: one line per row and metric, in the paper's unit."""
    table = load_published(mapping["table"])
    metrics = [table.metric(m) for m in mapping["metrics"]]
    columns = ["data", "row", "source", "n", "steps"] + \
        [m.label + (f" ({m.unit})" if m.unit else "") for m in metrics] + ["flags"]
    rows, numbers = [], []
    datasets, variants = in_table_order(mapping, table)
    for dataset, column in datasets:
        part = pool[pool["dataset"] == dataset]
        where = f"{dataset} ({next(c.label for c in table.columns if c.key == column)})"
        lines = []
        for label, paper_row in variants:
            lines += [_paper_line(table, paper_row, column, metrics),
                      _suite_line(table, grid, suite_rows(part, label), label, paper_row,
                                  metrics)]
        ref = refs.get(part["data"].iloc[0]) if len(part) else None
        lines += [_reference_line(ref, r, metrics) for r in (ref.rows if ref else [])]
        for head, values, flags, records in lines:
            rows.append([Cell(where)] + [Cell(h) for h in head]
                        + [Cell(v) for v in values] + [Cell(flags)])
            numbers += [{"data": dataset, "column": column, **r} for r in records]
    spread = f"{table.statistic}" + ("" if table.spread else " (no ± to show)")
    notes = [f"{table.title} ({table.citation}): {spread}; {table.samples:,} samples scored "
             f"per trial; budget {table.budget_text}. Source: {table.source['repository']} "
             f"`{table.source['path']}` ({table.source['commit']}); {table.source['transcribed']}; "
             f"the table in full: {table.docs}.",
             "Suite rows: mean ± standard error over the scored seeds (n), in the paper's unit "
             "(high quality: the suite's fraction × 100); steps: the suite's budget and its "
             "share of the paper's. Reference rows (no GAN, the same metric protocol): mean ± "
             "standard error over their seeds.",
             validity.MARK_NOTE]
    frame = pd.DataFrame(numbers)
    if len(frame):
        frame["steps"] = frame["steps"].astype("Int64")  # no '400000.0' in the CSV
    return Table(stem, f"Grid {grid} beside {table.title}", columns, rows, frame, notes)


# Each line: ([row, source, n, steps], metric texts, flags text, CSV records without data/column)
def _paper_line(table: PublishedTable, paper_row: str, column: str, metrics: list) -> tuple:
    values = [table.value(paper_row, column, m.key) for m in metrics]
    return ([paper_row, table.title, f"{table.trials} trials", _paper_steps(table)],
            [value_text(v, s, m.unit) for (v, s), m in zip(values, metrics)], "",
            [{"row": paper_row, "source": "paper", "variant": "", "n": table.trials,
              "steps": table.budget_steps, "metric": m.suite, "mean": v, "spread": s,
              "spread_kind": table.spread or "none", "unit": m.unit, "degenerate": False,
              "flags": ""} for (v, s), m in zip(values, metrics)])


def _suite_line(table: PublishedTable, grid: str, got: pd.DataFrame, label: str,
                paper_row: str, metrics: list) -> tuple:
    summaries = [mean_se(got[m.suite] * m.scale if m.suite in got else []) for m in metrics]
    steps = sorted({int(s) for s in got["steps"].dropna()}) if len(got) else []
    stored = len(got) > 0
    bad = validity.degenerate(got) if stored else False
    flags = views.flags_text(got) if stored else ""
    return ([(validity.mark(label, got) if stored else label) + f" → {paper_row}",
             f"suite ({grid})", f"{max(k for *_, k in summaries)} seeds" if stored else "not stored",
             budget_text(steps, table.budget_steps)],
            [value_text(mu, se, m.unit) if k else "–" for (mu, se, k), m in zip(summaries, metrics)],
            flags,
            [{"row": paper_row, "source": "suite", "variant": label, "n": k,
              "steps": steps[0] if len(steps) == 1 else None, "metric": m.suite, "mean": mu,
              "spread": se, "spread_kind": "standard error", "unit": m.unit, "degenerate": bad,
              "flags": flags} for (mu, se, k), m in zip(summaries, metrics)])


def _reference_line(ref: References, r: dict, metrics: list) -> tuple:
    summaries = [mean_se([x * m.scale for x in r["metrics"].get(m.suite, [])]) for m in metrics]
    return ([r["label"], f"reference ({r['role']})", f"{len(ref.seeds)} seeds", ""],
            [value_text(mu, se, m.unit) if k else "–" for (mu, se, k), m in zip(summaries, metrics)],
            "",
            [{"row": r["label"], "source": f"reference:{r['role']}", "variant": "", "n": k,
              "steps": None, "metric": m.suite, "mean": mu, "spread": se,
              "spread_kind": "standard error", "unit": m.unit, "degenerate": False, "flags": ""}
             for (mu, se, k), m in zip(summaries, metrics)])


def directions_table(stem: str, grid: str, mapping: dict, pool: pd.DataFrame) -> Table:
    """For each pair of rows the paper compares (both mapped), each metric and dataset: the
    paper's Δ, the suite's mean paired Δ, and whether their signs agree."""
    table = load_published(mapping["table"])
    metrics = [table.metric(m) for m in mapping["metrics"]]
    datasets, variants = in_table_order(mapping, table)
    variants_of: dict[str, list[str]] = {}
    for label, paper_row in variants:
        variants_of.setdefault(paper_row, []).append(label)
    columns = ["data", "paper pair", "suite pair", "metric", "paper Δ", "suite Δ (n paired)",
               "direction"]
    rows, numbers = [], []
    for dataset, column in datasets:
        part = pool[pool["dataset"] == dataset]
        for a, b in table.compare:
            for va in variants_of.get(a, []):
                for vb in variants_of.get(b, []):
                    ra, rb = suite_rows(part, va), suite_rows(part, vb)
                    for m in metrics:
                        # rounded: the table's numbers have two decimals, not binary noise
                        p = round(table.value(a, column, m.key)[0]
                                  - table.value(b, column, m.key)[0], 10)
                        if not math.isfinite(p):
                            continue
                        d, n = paired_delta(ra, rb, m.suite, m.scale)
                        verdict = direction(p, d, n, validity.degenerate(ra) or
                                            validity.degenerate(rb))
                        if verdict == NO_COMPARISON:  # withheld, as the Δ tables do (NaN)
                            d = math.nan
                        shown = f"{num(d, signed=True)} ({n})" if n and math.isfinite(d) else "–"
                        rows.append([Cell(dataset), Cell(f"{a} vs {b}"), Cell(f"{va} vs {vb}"),
                                     Cell(m.label), Cell(num(p, signed=True)), Cell(shown),
                                     Cell(verdict)])
                        numbers.append({"data": dataset, "column": column, "row": a,
                                        "against": b, "variant": va, "against_variant": vb,
                                        "metric": m.suite, "unit": m.unit, "paper_delta": p,
                                        "suite_delta": d, "n_paired": n, "direction": verdict})
    return Table(stem, f"Grid {grid} beside {table.title}: direction of each difference the "
                 f"paper compares", columns, rows, pd.DataFrame(numbers), [DIRECTION_NOTE])


def paired_delta(a: pd.DataFrame, b: pd.DataFrame, metric: str,
                 scale: float) -> tuple[float, int]:
    """Mean over the seeds both rows share of (a − b) × scale, and how many seeds: the design
    tables' paired Δ (stats.paired_delta), of which only the mean is shown here."""
    d = stats.paired_delta(by_seed(a, metric), by_seed(b, metric))
    return d.delta * scale, d.n


def direction(paper: float, suite: float, n: int, degenerate: bool) -> str:
    if degenerate:
        return NO_COMPARISON
    if n == 0:
        return NOT_STORED
    if paper == 0:
        return "paper: no difference"
    if suite == 0:
        return "suite: no difference"
    return "same direction" if (paper > 0) == (suite > 0) else "opposite"
