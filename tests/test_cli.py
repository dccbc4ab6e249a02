"""CLI: listing, training a cell end to end, status, and the bad-input contract
(one line on stderr, exit code 2, nothing written to the store)."""
import json

import pytest

from bench.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_tricks_json_lists_names_params_and_conflicts(capsys):
    code, out, _ = run(capsys, "tricks", "--json")
    infos = {t["name"]: t for t in json.loads(out)}
    assert code == 0
    assert {"label_smoothing", "wgan_gp", "unrolled"} <= set(infos)
    assert infos["wgan_gp"]["excludes"]["label_smoothing"]
    assert {"name": "k", "type": "int", "default": 5} in infos["unrolled"]["params"]


def test_tricks_pattern_and_matrix(capsys):
    code, out, _ = run(capsys, "tricks", "*label*")
    assert code == 0 and "label_smoothing" in out and "spectral_norm" not in out
    code, out, _ = run(capsys, "tricks", "--matrix", "--json")
    matrix = json.loads(out)
    assert matrix["wgan_gp"]["label_smoothing"] and matrix["spectral_norm"]["unrolled"] == []


BAD_INPUTS = [
    (["--dataset", "ring"], "unknown dataset 'ring'; did you mean 'ring8'"),
    (["--dataset", "ring8", "--tricks", "spectral_nrom"], "did you mean 'spectral_norm'"),
    (["--dataset", "ring8", "--tricks", "wgan_gp,label_smoothing"],
     "cannot run together: wgan_gp excludes label_smoothing"),
    (["--dataset", "ring8", "--tricks", "label_smoothing", "--param", "label_smoothing.rea=0.8"],
     "no param 'rea'"),
    (["--dataset", "ring8", "--tricks", "label_smoothing", "--param", "label_smoothing.real=high"],
     "must be a number"),
    (["--dataset", "ring8", "--param", "unrolled.k=3"], "not in --tricks"),
    (["--dataset", "cifar10", "--data-root", "{tmp}/nodata"], "--download"),
    (["--dataset", "ring8", "--steps", "0"], "steps must be >= 1"),
    (["--dataset", "ring8", "--z-dim", "0"], "z_dim must be >= 1"),
    (["--dataset", "ring8", "--stop-on", "soft"], "invalid choice: 'soft'"),
    (["--dataset", "stacked-digits", "--tricks", "conditional"], "one class label per sample"),
    (["--dataset", "digits", "--extractor", "inception-v3-compat", "--inception-weights",
      "{tmp}/none.pth"], "Inception weights file not found"),
    (["--dataset", "digits", "--metrics", "fid,isc"], "unknown metric 'isc'"),
]


@pytest.mark.parametrize("extra, message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, extra, message):
    store = tmp_path / "store"
    argv = ["train", "--store", str(store), "--steps", "2"] + [a.format(tmp=tmp_path) for a in extra]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("ganbench: error: "), err
    assert message in err
    assert not store.exists()


def test_trick_not_applicable_to_the_data_kind(capsys, tmp_path):
    from bench.trickapi.registry import list_tricks

    image_only = [n for n in list_tricks() if n in ("self_attention", "progressive_growing")]
    if not image_only:
        pytest.skip("no image-only trick registered")
    code, _, err = run(capsys, "train", "--dataset", "ring8", "--tricks", image_only[0],
                       "--store", str(tmp_path / "s"))
    assert code == 2 and "does not apply to 2d data" in err
    assert not (tmp_path / "s").exists()


def test_train_builds_the_same_cell_as_a_grid_with_the_same_settings():
    """Every setting of a grid's [[data]] table has a train option, so one cell of a preset
    (here paper-2d's ring8 unrolled seed 3) can be trained or inspected alone."""
    from bench.cli import make_parser
    from bench.cli.cmd_train import build_cell
    from bench.schedule.grid import load_grid

    wanted = next(c for c in load_grid("paper-2d").cells
                  if c.data.name == "ring8" and c.label == "unrolled" and c.seed == 3)
    args = make_parser().parse_args(
        ["train", "--dataset", "ring8", "--tricks", "unrolled", "--seed", "3", "--steps", "25000",
         "--batch-size", "512", "--g-lr", "1e-4", "--d-lr", "1e-4", "--z-dim", "256", "--width",
         "128", "--depth", "2", "--activation", "tanh", "--init", "orthogonal", "--log-every",
         "250", "--checkpoint-every", "2500", "--param", "unrolled.g_objective=value"])
    assert build_cell(args).cell_id == wanted.cell_id
    args.stop_on = "hard"
    assert build_cell(args).train.stop_on == "hard"
    assert build_cell(args).cell_id != wanted.cell_id


def test_unwritable_store(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run(capsys, "train", "--dataset", "ring8", "--steps", "2",
                       "--store", str(blocker / "store"))
    assert code == 2 and "cannot use store" in err


def test_status_of_missing_store(capsys, tmp_path):
    code, _, err = run(capsys, "status", "--store", str(tmp_path / "none"))
    assert code == 2 and "no store at" in err


def test_unknown_grid(capsys, tmp_path):
    code, _, err = run(capsys, "run", "--grid", "nope", "--store", str(tmp_path / "s"))
    assert code == 2 and "unknown grid 'nope'" in err and "cpu-default" in err


def test_grid_with_unknown_key(capsys, tmp_path):
    grid = tmp_path / "g.toml"
    grid.write_text('seeds = [0]\nstepz = 3\n[[data]]\nname = "ring8"\n')
    code, _, err = run(capsys, "run", "--grid", str(grid), "--store", str(tmp_path / "s"))
    assert code == 2 and "unknown key(s) stepz" in err
    assert not (tmp_path / "s").exists()


def test_train_writes_no_progress_bars_when_stderr_is_not_a_terminal(capsys, tmp_path):
    """As `run`: tqdm's '\\r' bars only on a terminal, not kilobytes of them in a log file."""
    code, out, err = run(capsys, "train", "--dataset", "ring8", "--steps", "3", "--batch-size",
                         "16", "--width", "8", "--checkpoint-every", "0", "--curve-every", "0",
                         "--store", str(tmp_path / "s"))
    assert code == 0 and out.strip()
    assert "\r" not in err and "it/s" not in err


def test_status_slowest_list_of_a_failed_cell_has_no_none(capsys, tmp_path):
    from bench.core.record import Record
    from bench.store import Store
    from tests.tiny import tiny_cell

    cell = tiny_cell()
    with Store(tmp_path / "s") as store:
        store.put(Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                         config=cell.to_dict(), status="failed", reason="RuntimeError: boom",
                         timings={"train_s": 1.5}))
    code, out, _ = run(capsys, "status", "--store", str(tmp_path / "s"))
    assert code == 0
    (line,) = [l for l in out.splitlines() if l.startswith(f"  {cell.cell_id}") and "train" in l]
    assert line.endswith(": train 1.5s, not scored") and "None" not in out


@pytest.mark.parametrize("raised, code", [("sigint", 130), ("sigterm", 143)])
def test_a_stopped_command_exits_128_plus_its_signal(monkeypatch, capsys, raised, code):
    import signal

    from bench.cli import cmd_tricks
    from bench.schedule.executor import Stopped

    def stop(args):
        raise KeyboardInterrupt if raised == "sigint" else Stopped(signal.SIGTERM)
    monkeypatch.setattr(cmd_tricks, "run", stop)
    assert main(["tricks"]) == code
    assert "interrupted; rerun the same command to resume" in capsys.readouterr().err
