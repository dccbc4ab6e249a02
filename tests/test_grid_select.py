"""`run --only` / `--datasets`: train part of a grid first; the store records the whole grid and
a later run trains only the rest."""
import pytest

from bench.cli import main
from bench.core.config import ConfigError
from bench.schedule.grid import load_grid
from bench.schedule.grid.select import select
from bench.store import Store
from tests.scheduler_util import TINY_GRID, lease_attempts


def test_select_keeps_the_matching_variants_and_datasets_in_grid_order():
    grid = load_grid("paper-2d")
    part = select(grid, "baseline,unrol*", "grid25")
    assert {(c.label, c.data.name) for c in part.cells} == {("baseline", "grid25"),
                                                             ("unrolled", "grid25")}
    assert len(part.cells) == 10 and [c.seed for c in part.cells[:5]] == [0, 1, 2, 3, 4]
    assert {m["cell_id"] for m in part.members} == {c.cell_id for c in part.cells}
    assert select(grid, None, None) is grid
    with pytest.raises(ConfigError, match="matches no variant.*variants: baseline, unrolled"):
        select(grid, "unroled", None)
    with pytest.raises(ConfigError, match="not in grid 'paper-2d' .datasets: ring8, grid25"):
        select(grid, None, "mnist")
    for only, datasets in (("", None), (" , ", None), (None, "")):  # not "everything"
        with pytest.raises(ConfigError, match="names nothing; leave it out"):
            select(grid, only, datasets)


def test_a_partial_run_records_the_whole_grid_and_the_rest_trains_later(tmp_path, capsys):
    path, store = tmp_path / "g.toml", tmp_path / "s"
    path.write_text(TINY_GRID.format(steps=4))
    argv = ["run", "--grid", str(path), "--store", str(store), "--workers", "1",
            "--curve-every", "0"]
    assert main(argv + ["--only", "label_smoothing"]) == 0
    assert "2 of 4 cells" in capsys.readouterr().out
    with Store(store) as s:
        assert {r.label for r in s.records()} == {"label_smoothing"}
        assert len(s.members("g")) == 4  # the whole grid, for reports and status
    assert main(["status", "--store", str(store), "--grid", "g"]) == 0
    assert "lacks 2 cell(s)" in capsys.readouterr().out
    assert main(argv) == 0
    assert sorted(lease_attempts(store).values()) == [1, 1, 1, 1]  # no cell trained twice


def test_the_resume_command_keeps_the_selection():
    from bench.cli import make_parser
    from bench.cli.cmd_run import resume_command

    args = make_parser().parse_args(["run", "--grid", "paper-2d", "--store", "s", "--only",
                                     "baseline,unrolled", "--datasets", "ring8"])
    assert resume_command(args) == ("ganbench run --grid paper-2d --store s --only "
                                    "baseline,unrolled --datasets ring8")
