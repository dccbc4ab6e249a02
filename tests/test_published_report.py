"""The suite's rows beside a published table (bench/report/published.py and the report's hook,
bench/report/build/published_tables.py), on synthetic rows whose numbers are computed by hand."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from bench.report import published
from bench.report.build.contents import Report
from bench.report.build.index_page import write_index
from bench.report.build.published_tables import add_published, mapping_of
from bench.report.build.stems import Stems
from bench.report.references import References
from bench.store.results import Catalog

MAPPING = {"table": "pacgan-t1", "rows": {"baseline": "GAN", "packing": "PacGAN2"},
           "datasets": {"ring8-pacgan": "ring", "grid25-pacgan": "grid"},
           "metrics": ["modes", "high_quality", "reverse_kl"]}
# per dataset and variant, per seed 0-2: (modes, high_quality as a fraction, reverse_kl, flags)
RING = {"baseline": [(8, 0.30, 0.40, ()), (7, 0.40, 0.30, ()), (6, 0.50, 0.20, ())],
        "packing": [(6, 0.20, 0.50, ()), (6, 0.25, 0.60, ()), (7, 0.33, 0.40, ())]}
GRID = {"baseline": [(9, 0.02, 1.5, ()), (8, 0.03, 1.6, ()), (7, 0.02, 1.4, ())],
        # two of three seeds flagged: a degenerate row
        "packing": [(8, 0.01, 1.5, ("at_chance",)), (9, 0.02, 1.4, ("d_at_chance",)),
                    (7, 0.01, 1.6, ())]}


def rows(grid="g") -> pd.DataFrame:
    out = []
    for dataset, table in (("ring8-pacgan", RING), ("grid25-pacgan", GRID)):
        for label, seeds in table.items():
            for seed, (modes, hq, kl, flags) in enumerate(seeds):
                out.append({"grid": grid, "dataset": dataset, "data": dataset,
                            "row_label": label, "cell_id": f"{dataset}-{label}-{seed}",
                            "seed": seed, "status": "done", "run_flags": flags, "steps": 2000,
                            "modes": float(modes), "high_quality": hq, "reverse_kl": kl})
    return pd.DataFrame(out)


REFS = {"ring8-pacgan": References("ring8-pacgan", rows=[
    {"label": "chance: uniform ring", "role": "chance",
     "metrics": {"modes": [8, 8], "high_quality": [0.04, 0.05], "reverse_kl": [0.02, 0.04]}}],
    seeds=[0, 1])}


def numbers(table, **where) -> pd.DataFrame:
    n = table.numbers
    for k, v in where.items():
        n = n[n[k] == v]
    return n


def test_suite_rows_are_mean_and_standard_error_in_the_papers_unit():
    t = published.values_table("published-g", "g", MAPPING, rows(), REFS)
    hq = numbers(t, source="suite", data="ring8-pacgan", variant="baseline",
                 metric="high_quality").iloc[0]
    # 30, 40, 50 %: mean 40, sd 10, standard error 10 / √3
    assert hq["mean"] == pytest.approx(40.0) and hq["spread"] == pytest.approx(10 / math.sqrt(3))
    assert hq["n"] == 3 and hq["unit"] == "%" and hq["spread_kind"] == "standard error"
    modes = numbers(t, source="suite", data="ring8-pacgan", variant="packing",
                    metric="modes").iloc[0]
    # 6, 6, 7: mean 19/3, sd √(1/3), standard error √(1/3) / √3 = 1/3
    assert modes["mean"] == pytest.approx(19 / 3) and modes["spread"] == pytest.approx(1 / 3)
    paper = numbers(t, source="paper", data="ring8-pacgan", row="PacGAN2",
                    metric="high_quality").iloc[0]
    assert (paper["mean"], paper["spread"], paper["n"], paper["steps"]) == (95.6, 2.0, 10, 400000)
    text = [[c.text for c in r] for r in t.rows]
    assert ["ring8-pacgan (ring)", "baseline → GAN", "suite (g)", "3 seeds",
            "2,000 (1/200 of 400,000)", "7 ± 0.577", "40 ± 5.77 %", "0.3 ± 0.0577", ""] in text
    assert ["ring8-pacgan (ring)", "GAN", "PacGAN, Table 1", "10 trials", "400,000",
            "6.3 ± 0.5", "98.2 ± 0.2 %", "0.45 ± 0.09", ""] in text
    # the chance row: 4 and 5 %: mean 4.5, standard error 0.5
    assert ["ring8-pacgan (ring)", "chance: uniform ring", "reference (chance)", "2 seeds", "",
            "8 ± 0", "4.5 ± 0.5 %", "0.03 ± 0.01", ""] in text
    degenerate = next(r for r in text if r[1].startswith("packing") and r[0].startswith("grid"))
    assert degenerate[1] == "packing † → PacGAN2"
    assert degenerate[-1] == "at_chance, d_at_chance"
    assert any("†: a degenerate row" in n for n in t.notes)
    assert any("mean ± standard error over 10 trials" in n and "fjxmlzn/PacGAN" in n
               for n in t.notes)


def test_directions_agree_or_not_and_a_degenerate_row_gets_no_claim():
    t = published.directions_table("published-g-directions", "g", MAPPING, rows())
    said = {(r["data"], r["metric"]): r for _, r in t.numbers.iterrows()}
    modes = said[("ring8-pacgan", "modes")]  # paper +1.6; suite (−2, −1, +1) / 3
    assert modes["paper_delta"] == 1.6  # exactly: the table's decimals, no binary noise
    assert modes["suite_delta"] == pytest.approx(-2 / 3) and modes["n_paired"] == 3
    assert modes["direction"] == "opposite"
    hq = said[("ring8-pacgan", "high_quality")]  # paper −2.6; suite (−10, −15, −17) / 3 points
    assert hq["suite_delta"] == pytest.approx(-14.0) and hq["direction"] == "same direction"
    kl = said[("ring8-pacgan", "reverse_kl")]  # paper −0.38; suite (+0.1, +0.3, +0.2) / 3
    assert kl["suite_delta"] == pytest.approx(0.2) and kl["direction"] == "opposite"
    for metric in ("modes", "high_quality", "reverse_kl"):
        withheld = said[("grid25-pacgan", metric)]
        assert withheld["direction"] == published.NO_COMPARISON
        assert math.isnan(withheld["suite_delta"])  # no number to read a direction into
    shown = [[c.text for c in r] for r in t.rows]
    assert ["grid25-pacgan", "PacGAN2 vs GAN", "packing vs baseline", "modes", "+6.5", "–",
            published.NO_COMPARISON] in shown
    # PacGAN3/4 are not mapped, so only PacGAN2 vs GAN is stated: 2 datasets x 3 metrics
    assert len(t.rows) == 6


def test_rows_follow_the_tables_order_whatever_the_specs_key_order():
    shuffled = {**MAPPING, "rows": {"packing": "PacGAN2", "baseline": "GAN"},
                "datasets": {"grid25-pacgan": "grid", "ring8-pacgan": "ring"}}
    t = published.values_table("x", "g", shuffled, rows(), {})
    assert [(r[0].text, r[1].text) for r in t.rows][:4] == [
        ("ring8-pacgan (ring)", "GAN"), ("ring8-pacgan (ring)", "baseline → GAN"),
        ("ring8-pacgan (ring)", "PacGAN2"), ("ring8-pacgan (ring)", "packing → PacGAN2")]
    d = published.directions_table("x", "g", shuffled, rows())
    assert list(dict.fromkeys(d.numbers["data"])) == ["ring8-pacgan", "grid25-pacgan"]


def test_a_mapped_row_the_store_lacks_is_not_stored():
    df = rows()
    df = df[df["row_label"] != "packing"]
    t = published.directions_table("x", "g", MAPPING, df)
    assert set(t.numbers["direction"]) == {published.NOT_STORED}
    v = published.values_table("x", "g", MAPPING, df, {})
    assert any(r[3].text == "not stored" for r in v.rows)


def test_budget_text():
    assert published.budget_text([2000], 400000) == "2,000 (1/200 of 400,000)"
    assert published.budget_text([25000], 400000) == "25,000 (1/16 of 400,000)"
    assert published.budget_text([25000], None) == "25,000"
    assert published.budget_text([3000], 400000) == "3,000 (0.0075 × of 400,000)"


def test_the_hook_writes_both_tables_and_the_index_section(tmp_path):
    df = rows("pacgan-t1-cpu")
    # a store written before [published]: the spec lacks it, so the preset's mapping is used
    report = Report(tmp_path, df=df, catalog=Catalog(grids={"pacgan-t1-cpu": {}}))
    add_published(report, REFS, Stems())
    assert [t.name for t in report.tables] == ["published-pacgan-t1-cpu",
                                               "published-pacgan-t1-cpu-directions"]
    (line,) = report.published
    assert "bench/grids/pacgan-t1-cpu.toml" in line and "2 × opposite" in line
    assert f"3 × {published.NO_COMPARISON}" in line
    for t in report.tables:
        paths = t.write(tmp_path / "tables")
        assert [p.suffix for p in paths] == [".md", ".tex", ".csv"]
    report.df = df.iloc[0:0]  # the index's protocol section needs a store's full columns
    index = write_index(report, command="", seconds=0.0).read_text()
    assert "## Against the published table" in index and line in index


def test_mapping_comes_from_the_stored_spec_first():
    assert mapping_of("anything", {"published": MAPPING}) == (
        MAPPING, "the grid spec stored by `run`")
    assert mapping_of("no-such-preset", {}) == (None, "")
    assert mapping_of("quick", {}) == (None, "")  # a preset without [published]


@pytest.mark.parametrize("text, why", [
    ("[published\ntable = 1", "cannot be read: "),
    ("published = 3", "has an invalid [published] table: not a table"),
    ("[published]\ntable = 'no-such-table'", "has an invalid [published] table: "),
])
def test_a_broken_preset_costs_the_comparison_with_one_reason(tmp_path, monkeypatch, text, why):
    from bench.report.build import published_tables

    (tmp_path / "broken.toml").write_text(text)
    monkeypatch.setattr(published_tables, "GRID_DIR", tmp_path)
    mapping, where = mapping_of("broken", {})
    assert mapping is None and why in where and "bench/grids/broken.toml" in where
    assert "\n" not in where


def test_a_table_without_spread_or_budget_shows_means_only():
    veegan = {"table": "veegan-t1", "rows": {"baseline": "GAN", "packing": "Unrolled GAN (5 steps)"},
              "datasets": {"ring8-pacgan": "ring"}, "metrics": ["modes", "high_quality"]}
    t = published.values_table("x", "g", veegan, rows(), {})
    text = [[c.text for c in r] for r in t.rows]
    assert ["ring8-pacgan (ring)", "GAN", "VEEGAN, Table 1", "5 trials", "not stated", "1",
            "99.3 %", ""] in text
    assert text[1][4] == "2,000"  # no share of a budget the paper does not state
    assert any("mean of 5 runs; no spread is given (no ± to show)" in n for n in t.notes)
    d = published.directions_table("x", "g", veegan, rows())
    said = dict(zip(d.numbers["metric"], d.numbers["direction"]))
    # Unrolled − GAN: paper +6.6 modes, −63.7 points; suite −2/3 modes, −14 points
    assert said == {"modes": "opposite", "high_quality": "same direction"}


def test_the_latex_has_no_bare_arrow():
    from bench.report.tables import to_latex

    tex = to_latex(published.values_table("x", "g", MAPPING, rows(), REFS))
    assert "→" not in tex and r"baseline $\rightarrow$ GAN" in tex
