"""The published tables as data (bench/published/*.toml) equal the tables the docs print
(docs/pacgan.md, docs/results.md), which were transcribed from the authors' images: the two
cannot drift. The markdown tables are parsed, not restated here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.core.config import ConfigError
from bench.core.published import load_published, table_names

ROOT = Path(__file__).resolve().parents[1]


def markdown_table(path: Path, after: str) -> list[list[str]]:
    """The cells of the first Markdown table after the line containing `after` (header first,
    the |---| line dropped)."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if after in line)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):
                rows.append(cells)
        elif rows:
            break
    return rows


def parse_value(text: str) -> tuple[float, float | None]:
    """'6.3 ± 0.5', '98.2 ± 0.2 %', '99.3', '16' -> (mean, spread or None)."""
    m = re.fullmatch(r"([\d.]+)(?: ± ([\d.]+))?(?: %)?", text)
    assert m, text
    return float(m.group(1)), (float(m.group(2)) if m.group(2) else None)


def header_keys(header: list[str]) -> list[tuple[str, str]]:
    """'ring: modes (of 8)' / 'grid: % high quality' -> (column, metric key)."""
    out = []
    for h in header[1:]:
        column, _, metric = h.partition(":")
        metric = metric.strip().lstrip("% ")
        metric = re.sub(r" \(of \d+\)", "", metric).replace(" ", "_").lower()
        out.append((column.strip(), metric))
    return out


DOCS = {"pacgan-t1": ("docs/pacgan.md", "## The published table"),
        "veegan-t1": ("docs/results.md", "**VEEGAN, Table 1**")}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_data_equals_the_docs_table(name):
    path, after = DOCS[name]
    rows = markdown_table(ROOT / path, after)
    keys = header_keys(rows[0])
    table = load_published(name)
    assert table.docs == path
    assert [r[0] for r in rows[1:]] == list(table.rows)  # every row, in the docs' order
    assert {(c, m) for c, m in keys} == {(c.key, m.key) for c in table.columns
                                         for m in table.metrics}
    for r in rows[1:]:
        for (column, metric), text in zip(keys, r[1:]):
            assert table.value(r[0], column, metric) == parse_value(text), (r[0], column, metric)


def test_sources_and_setups_are_those_the_docs_give():
    pac, vee = load_published("pacgan-t1"), load_published("veegan-t1")
    # whitespace folded: the docs wrap their sentences
    pacgan_md = " ".join((ROOT / "docs/pacgan.md").read_text().split())
    results_md = " ".join((ROOT / "docs/results.md").read_text().split())
    for table, text in ((pac, pacgan_md), (vee, results_md)):
        assert table.source["repository"] in text and table.source["path"] in text
        for commit in re.findall(r"\b[0-9a-f]{7}\b", table.source["commit"]):
            assert commit in text
    assert "Mean ± standard error over 10 trials; 2,500 samples per trial" in pacgan_md
    assert (pac.spread, pac.trials, pac.samples) == ("standard error", 10, 2500)
    assert "400 epochs of 100,000 samples = 400,000 steps" in pacgan_md
    assert pac.budget_steps == 400000
    assert "2,500 samples, averaged over 5 runs; no spread is given" in results_md
    assert (vee.spread, vee.trials, vee.samples, vee.budget_steps) == ("", 5, 2500, None)
    assert all(s is None for r in vee.rows.values() for c in r.values() for _, s in c.values())
    assert pac.compare == (("PacGAN2", "GAN"), ("PacGAN3", "GAN"), ("PacGAN4", "GAN"))
    assert ("Unrolled GAN (5 steps)", "GAN") in vee.compare


def test_every_table_loads_and_an_unknown_one_is_one_line():
    assert table_names() == ["pacgan-t1", "veegan-t1"]
    for name in table_names():
        assert load_published(name).name == name
    with pytest.raises(ConfigError, match="unknown published table 'nope' .known: pacgan-t1, "
                                          "veegan-t1"):
        load_published("nope")
