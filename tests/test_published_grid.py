"""A grid's [published] table (bench/schedule/grid/published.py): it maps variants and datasets
onto a published table's rows and columns, changes no cell id, membership or plan, and a bad
mapping is one line naming the file (exit 2)."""
from __future__ import annotations

import pytest

from bench.cli import main
from bench.schedule.grid import load_grid

PRESETS = {"pacgan-t1": "pacgan-t1", "pacgan-t1-cpu": "pacgan-t1", "paper-2d": "veegan-t1"}


def without_published(doc: dict) -> dict:
    return {k: v for k, v in doc.items() if k != "published"}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_the_mapping_changes_no_cell_id_member_or_plan(preset):
    with_, without = load_grid(preset), load_grid(preset, edit=without_published)
    assert [c.cell_id for c in with_.cells] == [c.cell_id for c in without.cells]
    assert with_.members == without.members and with_.plans == without.plans
    assert {k: v for k, v in with_.spec.items() if k != "published"} == without.spec
    assert with_.spec["published"]["table"] == PRESETS[preset]
    assert "published" not in without.spec


def test_the_presets_map_the_rows_the_brief_names():
    cpu = load_grid("pacgan-t1-cpu").spec["published"]
    assert cpu == {"table": "pacgan-t1", "rows": {"baseline": "GAN", "packing": "PacGAN2"},
                   "datasets": {"ring8-pacgan": "ring", "grid25-pacgan": "grid"},
                   "metrics": ["modes", "high_quality", "reverse_kl"]}
    full = load_grid("pacgan-t1").spec["published"]["rows"]
    assert full == {"baseline": "GAN", "packing [packing.m=2]": "PacGAN2",
                    "packing [packing.m=3]": "PacGAN3", "packing [packing.m=4]": "PacGAN4"}
    p2d = load_grid("paper-2d").spec["published"]
    assert p2d["rows"] == {"baseline": "GAN", "unrolled": "Unrolled GAN (5 steps)"}
    assert p2d["datasets"] == {"ring8": "ring", "grid25": "grid"}
    assert p2d["metrics"] == ["modes", "high_quality"]  # VEEGAN's table has no reverse KL


GRID = """
design = "add-one"
tricks = ["packing"]
[published]
{published}
[[data]]
name = "ring8"
steps = 5
batch_size = 16
width = 8
"""
GOOD = 'table = "pacgan-t1"\nrows = { baseline = "GAN", packing = "PacGAN2" }\n' \
       'datasets = { ring8 = "ring" }'


@pytest.mark.parametrize("published, shown", [
    (GOOD.replace('"pacgan-t1"', '"pacgan-t9"'),
     "[published] table: unknown published table 'pacgan-t9' (known: pacgan-t1, veegan-t1)"),
    (GOOD.replace('packing = "PacGAN2"', 'packing = "PacGAN9"'),
     "[published] rows: packing = 'PacGAN9' is not a row of pacgan-t1 (its rows: GAN, ALI, "
     "PacGAN2, PacGAN3, PacGAN4)"),
    (GOOD.replace("packing =", "spectral_norm ="),
     "[published] rows: variant 'spectral_norm' is not a variant of this grid (its variants: "
     "baseline, packing)"),
    (GOOD.replace("ring8 =", "grid25 ="),
     "[published] datasets: dataset 'grid25' is not a dataset of this grid (its datasets: "
     "ring8)"),
    (GOOD.replace('"ring" }', '"square" }'),
     "[published] datasets: ring8 = 'square' is not a column of pacgan-t1 (its columns: ring, "
     "grid)"),
    (GOOD + '\nmetrics = ["fid"]',
     "[published] metrics: 'fid' is not a metric pacgan-t1 reports (the suite's names for "
     "them: modes, high_quality, reverse_kl)"),
    (GOOD + '\ncolumns = 1', "[published] unknown key(s) columns (allowed: datasets, metrics, "
                            "rows, table)"),
    ('table = "pacgan-t1"\ndatasets = { ring8 = "ring" }',
     "[published] rows = None: expected a non-empty table of variant = \"paper name\""),
])
def test_a_bad_mapping_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys, published, shown):
    path = tmp_path / "g.toml"
    path.write_text(GRID.format(published=published))
    assert main(["run", "--grid", str(path), "--store", str(tmp_path / "s"), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"ganbench: error: {path}: {shown}", err
    assert not (tmp_path / "s").exists()


def test_a_good_mapping_loads_and_compare_drops_it(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text(GRID.format(published=GOOD))
    assert load_grid(str(path)).spec["published"]["rows"] == {"baseline": "GAN",
                                                              "packing": "PacGAN2"}
    from bench.cli.cmd_compare import held_out_doc

    assert "published" not in held_out_doc({"published": {}, "data": []}, ["x"], None)
