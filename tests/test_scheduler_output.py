"""Run output (aligned lines in grid order, a summary), `ganbench designs`, and the dry-run's
time estimate from stored ms_per_step."""
import io
import json

from bench.cli import main
from bench.core.record import Record
from bench.schedule.dry_run import estimate_seconds
from bench.schedule.grid import load_grid
from bench.schedule.run_output import RunTable
from bench.store import Store
from tests.tiny import tiny_cell


def record(cell, status, reason="", **timings):
    return Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                  config=cell.to_dict(), status=status, reason=reason, step=cell.train.steps,
                  timings=timings)


def test_lines_come_in_grid_order_aligned_with_a_summary():
    cells = [tiny_cell(seed=s) for s in range(3)] + [tiny_cell(tricks=["self_attention"])]
    out = io.StringIO()
    table = RunTable(cells + cells[:1], out)  # a cell listed twice is shown once
    table.header("grid 'x'")
    # they finish out of order: nothing is printed until the first cell is in
    table.add(record(cells[2], "done", train_s=1.0))
    table.add(record(cells[3], "not-applicable", "self_attention does not apply to 2d data"))
    assert out.getvalue().count("\n") == 2  # header lines only
    table.add(record(cells[0], "failed", "RuntimeError: boom"))
    table.add(record(cells[1], "done"))
    lines = out.getvalue().splitlines()[2:]
    assert [line.split()[0] for line in lines] == [c.cell_id for c in cells]
    status_at = {line.index(f" {word} ") for line in lines
                 for word in ("done", "failed", "not-applicable") if f" {word} " in line}
    assert len(status_at) == 1  # one status column, wide enough for not-applicable
    assert lines[3].split("not-applicable  ")[1] == "self_attention does not apply to 2d data"
    summary = table.summary("runs/x", total=4)
    assert summary.startswith("4/4 cells: 2 done, 1 failed, 1 not-applicable; wall ")
    assert summary.endswith("store runs/x")


def test_designs_command_lists_every_design(capsys):
    assert main(["designs", "--json"]) == 0
    names = json.loads(capsys.readouterr().out)
    assert "leave-one-out" in names and "fractional-factorial" in names


def test_dry_run_estimate_uses_comparable_stored_cells(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('design = "add-one"\ntricks = ["spectral_norm"]\n'
                    '[[data]]\nname = "ring8"\nsteps = 200\nbatch_size = 16\n')
    grid = load_grid(str(path))
    base, sn = sorted(grid.cells, key=lambda c: c.label)
    with Store(tmp_path / "s") as store:
        # a stored baseline of 100 steps at 10 ms/step with 1 s of eval: 0.02 s per step
        old = tiny_cell(steps=100, batch_size=16)
        store.put(record(old, "done", ms_per_step=10.0, eval_s=1.0))
    seconds, unknown, borrowed = estimate_seconds(grid, {base.cell_id, sn.cell_id},
                                                  tmp_path / "s")
    # both cells: same dataset and batch size (the spectral_norm one has no same-label record,
    # so its time is borrowed from the baseline's and counted as such)
    assert (unknown, borrowed) == (0, 1) and abs(seconds - 2 * 200 * 0.02) < 1e-9
    assert estimate_seconds(grid, {base.cell_id}, tmp_path / "s")[1:] == (0, 0)
    # nothing comparable stored: the calibrated per-step cost (bench/schedule/step_costs.py)
    from bench.schedule.step_costs import estimate_cell_seconds

    seconds, calibrated, borrowed = estimate_seconds(grid, {base.cell_id}, tmp_path / "empty")
    assert (calibrated, borrowed) == (1, 0) and seconds == estimate_cell_seconds(base) > 0
