"""What a person reads in the terminal: rows and progress bars never share a line, labels are
abbreviated to texts no two variants share, a run interrupted after its last cell says it
finished, wide comparison tables wrap into blocks, preset names get suggestions, -q / -v."""
import io
import logging

import pandas as pd
import pytest

from bench.cli import main
from bench.cli import common
from bench.core.record import Record
from bench.schedule.run_output import RunTable, short_labels
from tests.tiny import tiny_cell

LONG = ["instance_noise+one_sided_label_smoothing+spectral_norm",
        "instance_noise+one_sided_label_smoothing+minibatch_discrimination",
        "instance_noise+one_sided_label_smoothing+ttur", "baseline"]


def test_long_labels_are_cut_in_the_middle_into_distinct_texts():
    short = short_labels(LONG, 40)
    assert short["baseline"] == "baseline"
    assert len(set(short.values())) == len(LONG)
    for label, text in short.items():
        assert len(text) <= 40
        if text != label:  # the head and the distinguishing tail are kept
            head, tail = text.split("…")
            assert label.startswith(head) and label.endswith(tail)
    assert short[LONG[0]].endswith("+spectral_norm") and short[LONG[2]].endswith("+ttur")
    # two labels that differ only in the middle stay whole rather than merge
    same_ends = ["a" * 50 + "x" + "b" * 50, "a" * 50 + "y" + "b" * 50]
    assert set(short_labels(same_ends, 40).values()) == set(same_ends)


def _record(cell, status="done"):
    return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                  config=cell.to_dict(), status=status, step=cell.train.steps)


def test_rows_lift_the_progress_bar_off_their_line():
    from tqdm import tqdm

    out = io.StringIO()
    cell = tiny_cell()
    table = RunTable([cell], out)
    bar = tqdm(total=3, file=out, desc="cells")  # a bar on the same stream as the rows
    bar.update(1)
    table.add(_record(cell))
    bar.close()
    line = table.line(_record(cell))
    pieces = out.getvalue().replace("\r", "\n").split("\n")
    assert line in pieces  # the row sits on a line of its own, not inside the bar's


def test_ctrl_c_after_every_cell_finished_exits_0_without_a_resume_hint(
        tmp_path, monkeypatch, capsys):
    from bench.schedule import staged

    def finished_then_interrupted(grid, *args, **kw):
        for cell in grid.cells:
            yield _record(cell)
        raise KeyboardInterrupt

    monkeypatch.setattr(staged, "run_staged", finished_then_interrupted)
    code = main(["run", "--grid", "smoke", "--store", str(tmp_path / "s"), "--workers", "1",
                 "--datasets", "ring8"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Resume with" not in err and "nothing to resume" in err
    assert " done" in out and "cells:" in out


def test_ctrl_c_after_stage_1_of_held_out_tuning_still_says_how_to_resume(
        tmp_path, monkeypatch, capsys):
    """Held-out tuning's stage 2 is only known when stage 1 is done: a stop between the two has
    not finished the grid."""
    from bench.schedule import staged

    def stage_1_then_interrupted(grid, *args, **kw):
        assert grid.plans  # cpu-default tunes on held-out seeds
        for cell in grid.cells:
            yield _record(cell)
        raise KeyboardInterrupt

    monkeypatch.setattr(staged, "run_staged", stage_1_then_interrupted)
    code = main(["run", "--grid", "cpu-default", "--store", str(tmp_path / "s"), "--workers",
                 "1", "--datasets", "ring8"])
    assert code == 130
    assert "Resume with" in capsys.readouterr().err


def test_a_misspelled_preset_gets_a_suggestion(tmp_path, capsys):
    assert main(["run", "--grid", "quik", "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "did you mean 'quick'?" in err[0]


def test_a_wide_comparison_table_wraps_into_blocks_of_metrics():
    from bench.cli.cmd_compare import fit_columns
    from bench.report.tables import Cell, Table

    metrics = ["fid", "kid_mean", "precision", "recall", "modes"]
    columns = ["variant", "status", "n"] + [f"{m} ↓" for m in metrics] + [
        f"Δ {m} [95% CI]" for m in metrics]
    row = [Cell("instance_noise+spectral_norm"), Cell("done"), Cell("3/3")] + [
        Cell("12.3456 ± 0.123456 (3)")] * 5 + [Cell("-3.63 [-20.4, +13.2] p_H=0.22")] * 5
    t = Table("t", "digits, add-one", columns, [row], pd.DataFrame())
    text = fit_columns(t, columns, width=100)
    assert max(len(line) for line in text.splitlines()) <= 100
    assert text.count("(continued)") >= 1
    for m in metrics:  # every metric is shown, its mean and its Δ in the same block
        block = next(b for b in text.split("\n\n") if f"{m} ↓" in b)
        assert f"Δ {m} [95% CI]" in block


@pytest.mark.parametrize("flags, level", [([], logging.INFO), (["-q"], logging.WARNING),
                                          (["-v"], logging.DEBUG)])
def test_quiet_and_verbose_set_the_log_level(flags, level, capsys):
    assert main([*flags, "designs"]) == 0
    assert common.LOG.level == level
    assert common.quiet() == (level > logging.INFO)
    assert main(["designs", *flags]) == 0  # after the command too
    assert common.LOG.level == level
    common.LOG.info("hello")
    assert ("ganbench: hello" in capsys.readouterr().err) == (level <= logging.INFO)
    common.setup_logging()
