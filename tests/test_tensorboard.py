"""Live curves: `--tensorboard DIR` writes one TensorBoard run per cell (losses and eval curves
while it trains, final metrics, result and samples at the end), identical training with it or
without it, one clear line when the package is missing, and the same runs from a fused group's
cells as from the cells trained alone (TensorBoard leaves fusion on). The writer tests read the event
files back with the `tensorboard` package (in the `test` extra, so `make install` has it; an
install without it skips them, with the reason)."""
import importlib.util

import pytest

from bench.cli import main
from bench.metrics import EvalSpec
from bench.schedule.runner import run_cell
from bench.store import Store
from bench.train import tensorboard as tb
from tests.tiny import tiny_cell

needs_tb = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                              reason="the tensorboard package is not installed")


def events(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_run_names_hold_label_seed_and_id():
    cell = tiny_cell(tricks=["spectral_norm"], seed=3)
    assert tb.run_name(cell) == f"ring8-spectral_norm-s3-{cell.cell_id}"
    assert tb.tag("eval_modes") == "eval/modes" and tb.tag("d_adv") == "loss/d_adv"


@needs_tb
def test_a_tiny_cell_writes_its_curves_metrics_and_samples(tmp_path, monkeypatch):
    monkeypatch.setenv(tb.ENV, str(tmp_path / "tb"))
    cell = tiny_cell(steps=6)
    with Store(tmp_path / "s") as store:
        record = run_cell(cell, store, eval_spec=EvalSpec(metrics=("modes",)), progress=False,
                          curve_every=3)
    (run,) = (tmp_path / "tb").iterdir()
    assert run.name == tb.run_name(cell)
    acc = events(run)
    tags = acc.Tags()
    assert any(t.startswith("loss/") for t in tags["scalars"])  # D's and G's loss terms
    assert "eval/modes" in tags["scalars"]  # the cheap metric curve while it trained
    for name, points in record.curves.items():  # every stored curve point, at its step
        got = acc.Scalars(tb.tag(name))
        assert [e.step for e in got] == [int(s) for s, _ in points]
        assert [e.value for e in got] == pytest.approx([v for _, v in points], rel=1e-6)
    assert acc.Scalars("final/modes")[0].value == pytest.approx(record.metrics["modes"])
    (image,) = acc.Images("final/samples")  # the 2-D density image of the scored points
    assert image.step == record.step and (image.width, image.height) == (160, 160)
    # the same cell without TensorBoard trains and scores the same
    monkeypatch.delenv(tb.ENV)
    with Store(tmp_path / "plain") as store:
        plain = run_cell(cell, store, eval_spec=EvalSpec(metrics=("modes",)), progress=False,
                         curve_every=3)
    assert plain.metrics == record.metrics and plain.curves == record.curves


@needs_tb
def test_the_cli_option_sets_the_folder_for_every_cell(tmp_path, monkeypatch):
    monkeypatch.setenv(tb.ENV, "")  # main sets it; monkeypatch restores it afterwards
    code = main(["train", "--dataset", "ring8", "--steps", "4", "--batch-size", "16",
                 "--store", str(tmp_path / "s"), "--metrics", "modes", "--curve-every", "0",
                 "--tensorboard", str(tmp_path / "tb")])
    assert code == 0
    (run,) = (tmp_path / "tb").iterdir()
    assert "loss/d_adv" in events(run).Tags()["scalars"]


def test_without_the_package_the_option_is_one_line_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tb, "missing_reason", lambda: "--tensorboard needs the tensorboard "
                        "package, which is not installed (pip install tensorboard)")
    code = main(["train", "--dataset", "ring8", "--steps", "2", "--store", str(tmp_path / "s"),
                 "--tensorboard", str(tmp_path / "tb")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "pip install tensorboard" in err[0]
    assert not (tmp_path / "s").exists() and not (tmp_path / "tb").exists()


def test_tensorboard_leaves_fusion_on(monkeypatch):
    """Fused cells write their own runs (below): TensorBoard does not turn fusion off."""
    from bench.schedule.fused_plan import fusing_enabled

    monkeypatch.delenv("GANBENCH_NO_FUSE", raising=False)
    monkeypatch.setenv(tb.ENV, "/tmp/tb")
    assert fusing_enabled() and not fusing_enabled(False)


@needs_tb
def test_a_fused_groups_cells_write_the_runs_they_write_alone(tmp_path, monkeypatch):
    """Each cell of a fused group gets its own run with the scalar tags, at the same steps, that
    it gets trained alone; the values equal up to the fused engine's float reassociation (the
    tolerance of tests/test_fused_scheduler.py's fused-vs-alone records)."""
    from bench.schedule.executor import run_cells
    from bench.schedule.grid import load_grid
    from tests.scheduler_util import TINY_GRID
    from tests.test_fused_scheduler import close

    path = tmp_path / "g.toml"
    path.write_text(TINY_GRID.format(steps=30))  # 2 variants x 2 seeds: 2 groups of 2
    cells = load_grid(str(path)).cells
    spec = EvalSpec(metrics=("modes",), num_samples=500)
    records = {}
    for how, fuse in (("fused", True), ("alone", False)):
        monkeypatch.setenv(tb.ENV, str(tmp_path / how))
        records[how] = {r.cell_id: r for r in run_cells(
            cells, tmp_path / f"s-{how}", eval_spec=spec, progress=False, curve_every=10,
            fuse=fuse)}
    assert {r.runtime["engine"]["cells"] for r in records["fused"].values()} == {2}
    assert all("engine" not in r.runtime for r in records["alone"].values())
    names = sorted(p.name for p in (tmp_path / "alone").iterdir())
    assert names == sorted(tb.run_name(c) for c in cells)
    assert sorted(p.name for p in (tmp_path / "fused").iterdir()) == names
    for name in names:
        fused, alone = events(tmp_path / "fused" / name), events(tmp_path / "alone" / name)
        tags = alone.Tags()
        assert fused.Tags()["scalars"] == tags["scalars"]
        assert {"loss/d_adv", "eval/modes", "final/modes"} <= set(tags["scalars"])
        assert fused.Tags()["images"] == tags["images"] == ["final/samples"]
        assert fused.Tags()["tensors"] == tags["tensors"]  # the texts: cell, result
        for t in tags["scalars"]:
            got, want = fused.Scalars(t), alone.Scalars(t)
            assert [e.step for e in got] == [e.step for e in want], t
            assert all(close(g.value, w.value) for g, w in zip(got, want)), (
                t, [(g.value, w.value) for g, w in zip(got, want)])
