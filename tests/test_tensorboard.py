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
    from bench.schedule.fused.plan import fusing_enabled

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


class Killed(BaseException):
    """The process dies here: nothing below it runs (no `except Exception`, no flush)."""


def kill_after(monkeypatch, cls, method: str, step: int) -> None:
    """`cls.method` raises Killed once the trainer or engine passes `step` (after the call), and
    TensorBoard runs are left as a killed process leaves them: never closed, so what their writer
    had not flushed to disk is lost."""
    from bench.train import Trainer

    real = getattr(cls, method)

    def dying(self, *args, **kwargs):
        real(self, *args, **kwargs)
        if self.step >= step:
            raise Killed

    monkeypatch.setattr(cls, method, dying)
    monkeypatch.setattr(Trainer, "close_board", lambda self: None)


def board_steps(root, names):
    """{run: {scalar tag: [steps]}} as TensorBoard reads the runs (orphaned events purged)."""
    out = {}
    for name in names:
        acc = events(root / name)
        out[name] = {t: [e.step for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}
    return out


@needs_tb
def test_a_killed_and_resumed_cell_has_the_runs_steps_of_one_uninterrupted(tmp_path,
                                                                             monkeypatch):
    """A cell killed after a checkpoint (its writer's last events unflushed) and resumed has, in
    TensorBoard, each tag at the steps of an uninterrupted run: none missing, none twice."""
    from bench.train import Trainer

    cell = tiny_cell(steps=40, checkpoint_every=20, log_every=5)
    monkeypatch.setenv(tb.ENV, str(tmp_path / "once"))
    with Store(tmp_path / "once") as store:
        run_cell(cell, store, eval_spec=SPEC_TB, progress=False, curve_every=10)
    monkeypatch.setenv(tb.ENV, str(tmp_path / "resumed"))
    with monkeypatch.context() as m:
        kill_after(m, Trainer, "train_step", 30)
        with Store(tmp_path / "resumed") as store, pytest.raises(Killed):
            run_cell(cell, store, eval_spec=SPEC_TB, progress=False, curve_every=10)
    with Store(tmp_path / "resumed") as store:
        record = run_cell(cell, store, eval_spec=SPEC_TB, progress=False, curve_every=10)
    assert [h["event"] for h in record.history] == []  # resumed from step 20, not redone
    name = [tb.run_name(cell)]
    want = board_steps(tmp_path / "once", name)
    assert "eval/modes" in want[name[0]] and "loss/d_adv" in want[name[0]]
    assert board_steps(tmp_path / "resumed", name) == want


@needs_tb
def test_a_killed_and_resumed_fused_group_has_each_cells_uninterrupted_steps(tmp_path,
                                                                             monkeypatch):
    """The same for a fused group: killed after a checkpoint and resumed, each cell's run has
    every tag at the steps of the group's uninterrupted run, with nothing missing or doubled."""
    from bench.schedule.fused.group import run_fused_group
    from bench.train.fused import FusedTrainer

    cells = [tiny_cell(steps=40, checkpoint_every=20, log_every=5, seed=s) for s in range(3)]
    names = [tb.run_name(c) for c in cells]
    monkeypatch.setenv(tb.ENV, str(tmp_path / "once"))
    with Store(tmp_path / "once") as store:
        out = run_fused_group(cells, store, eval_spec=SPEC_TB, curve_every=10)
    assert not out.left and len(out.records) == 3
    monkeypatch.setenv(tb.ENV, str(tmp_path / "resumed"))
    with monkeypatch.context() as m:
        kill_after(m, FusedTrainer, "train_step", 30)
        with Store(tmp_path / "resumed") as store, pytest.raises(Killed):
            run_fused_group(cells, store, eval_spec=SPEC_TB, curve_every=10)
    with Store(tmp_path / "resumed") as store:
        out = run_fused_group(cells, store, eval_spec=SPEC_TB, curve_every=10)
        assert not out.left and all(r.runtime["engine"]["cells"] == 3
                                    for r in out.records.values())
    want = board_steps(tmp_path / "once", names)
    assert all("eval/modes" in w and "loss/d_adv" in w for w in want.values())
    assert board_steps(tmp_path / "resumed", names) == want


SPEC_TB = EvalSpec(metrics=("modes",), num_samples=500)


@needs_tb
@pytest.mark.parametrize("fused", [False, True])
def test_at_each_checkpoint_the_run_on_disk_holds_the_checkpoints_points(tmp_path, monkeypatch,
                                                                         fused):
    """A checkpoint is written only once the cell's TensorBoard run on disk holds every curve
    point up to its step: a process killed right after it loses no point the resume skips
    (TensorBoard's writer thread writes events some time after they are added)."""
    from bench.schedule.fused.group import run_fused_group
    from bench.train import checkpoint

    cells = [tiny_cell(steps=40, checkpoint_every=10, log_every=5, seed=s) for s in range(2)]
    monkeypatch.setenv(tb.ENV, str(tmp_path / "tb"))
    seen = []
    real = checkpoint.save_atomic

    def checked(state, path):
        cell = next(c for c in cells if c.cell_id == path.parent.name)
        on_disk = board_steps(tmp_path / "tb", [tb.run_name(cell)])[tb.run_name(cell)]
        step = int(state["step"])
        for name, points in state["log"]["curves"].items():
            assert on_disk.get(tb.tag(name), []) == [s for s, _ in points if s <= step], name
        seen.append(step)
        real(state, path)

    monkeypatch.setattr(checkpoint, "save_atomic", checked)
    with Store(tmp_path / "s") as store:
        if fused:
            out = run_fused_group(cells, store, eval_spec=SPEC_TB, curve_every=10)
            assert not out.left
        else:
            run_cell(cells[0], store, eval_spec=SPEC_TB, progress=False, curve_every=10)
    assert sorted(set(seen)) == [10, 20, 30, 40]
