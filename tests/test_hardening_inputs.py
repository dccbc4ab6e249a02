"""Bad input on every command: exactly one line on stderr (`ganbench: error: ...`), exit code 2,
no traceback, and the store untouched (or never created). Issue 7's classes of bad input."""
import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from bench.cli import main
from bench.core.config import (CellConfig, ConfigError, DataConfig, NetConfig, OptimConfig,
                               TrainConfig, TrickSpec)
from bench.core.record import Record
from bench.store import Store
from tests.tiny import tiny_cell

NEW = "{new}"  # a store path that must not come into existence
OLD = "{old}"  # a store that exists and must stay byte for byte the same

TRAIN = ["train", "--dataset", "ring8", "--steps", "2", "--store", NEW]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")

CASES = [
    # config values (validated in the frozen configs, so grids get the same checks)
    ("lr-nan", TRAIN + ["--lr", "nan"], "lr must be a finite number > 0, got nan"),
    ("lr-negative", TRAIN + ["--lr=-1e-3"], "lr must be a finite number > 0"),
    ("lr-zero", TRAIN + ["--lr", "0"], "lr must be a finite number > 0, got 0.0"),
    ("lr-inf", TRAIN + ["--lr", "inf"], "lr must be a finite number > 0, got inf"),
    ("width-zero", TRAIN + ["--width", "0"], "width must be >= 1, got 0"),
    ("width-negative", TRAIN + ["--width", "-4"], "width must be >= 1, got -4"),
    ("seed-negative", TRAIN + ["--seed", "-1"], "seed must be >= 0, got -1"),
    ("seed-huge", TRAIN + ["--seed", str(10**23)], f"seed must be <= {2**32 - 1}"),
    ("steps-zero", TRAIN + ["--steps", "0"], "steps must be >= 1, got 0"),
    ("steps-float", TRAIN + ["--steps", "1.5"], "invalid int value: '1.5'"),
    ("batch-one", TRAIN + ["--batch-size", "1"], "batch_size must be >= 2, got 1"),
    ("batch-too-big", ["train", "--dataset", "digits", "--steps", "2", "--batch-size", "5000",
                       "--store", NEW], "batch size 5000 is larger than the digits training set"),
    ("checkpoint-every-negative", TRAIN + ["--checkpoint-every", "-1"],
     "checkpoint_every must be >= 0, got -1"),
    ("trick-twice", TRAIN + ["--tricks", "spectral_norm,spectral_norm"],
     "--tricks names 'spectral_norm' more than once"),
    ("param-twice", TRAIN + ["--tricks", "label_smoothing", "--param", "label_smoothing.real=0.9",
                             "--param", "label_smoothing.real=0.8"],
     "--param gives label_smoothing.real more than once"),
    ("n-zero", TRAIN + ["--n", "0"], "num_samples"),
    ("eval-seed-negative", TRAIN + ["--eval-seed", "-2"], "seed"),
    ("curve-every-negative", TRAIN + ["--curve-every", "-1"], "--curve-every must be >= 0"),
    ("resolution-on-2d", TRAIN + ["--resolution", "16"], "resolution must not be set"),
    ("resolution-zero", ["train", "--dataset", "digits", "--resolution", "0", "--store", NEW],
     "resolution must be >= 1, got 0"),
    ("device-tpu", TRAIN + ["--device", "tpu"], "device 'tpu' is not supported"),
    ("device-cuda", TRAIN + ["--device", "cuda"], "no CUDA device is available", NO_CUDA),
    ("unknown-option", TRAIN + ["--sped", "3"], "unrecognized arguments: --sped 3"),
    ("missing-dataset", ["train", "--store", NEW], "the following arguments are required: --dataset"),
    ("no-command", [], "the following arguments are required: COMMAND"),
    # reading commands on a store that does not exist (never created)
    ("show-missing-store", ["show", "--store", NEW], "no store at"),
    ("status-missing-store", ["status", "--store", NEW], "no store at"),
    ("eval-missing-store", ["eval", "--store", NEW], "no store at"),
    # reading commands on an existing store (left untouched)
    ("show-cell-wildcard", ["show", "--store", OLD, "--cell", "%"], "--cell expects a cell id"),
    ("show-cell-underscore", ["show", "--store", OLD, "--cell", "_"], "--cell expects a cell id"),
    ("show-cell-unknown", ["show", "--store", OLD, "--cell", "0000"], "no stored cell matches"),
    ("eval-cell-wildcard", ["eval", "--store", OLD, "--cell", "%%"], "--cell expects a cell id"),
    ("eval-device-tpu", ["eval", "--store", OLD, "--device", "tpu"], "device 'tpu'"),
    ("eval-n-zero", ["eval", "--store", OLD, "--n", "0"], "num_samples"),
    ("eval-bad-metric", ["eval", "--store", OLD, "--metrics", "fid,isc"], "unknown metric 'isc'"),
    # an empty --cell is not "every cell" (eval would re-score them all)
    ("show-cell-empty", ["show", "--store", OLD, "--cell", ""], "--cell is empty"),
    ("eval-cell-empty", ["eval", "--store", OLD, "--cell", ""], "--cell is empty"),
    ("eval-cell-blank", ["eval", "--store", OLD, "--cell", "  "], "--cell is empty"),
    ("samples-cell-empty", ["samples", "--store", OLD, "--cell", ""], "--cell is empty"),
    # a metric that applies to none of the cells would re-score nothing but add history
    ("eval-metric-applies-to-no-cell", ["eval", "--store", OLD, "--metrics", "fid,kid"],
     "--metrics fid,kid does not apply to 2d data (scored on modes): nothing to re-score in "
     "the 1 selected cell(s)"),
    ("compare-bad-retry", ["compare", "--trick", "label_flip", "--store", NEW, "--retry", "done"],
     "--retry takes failed, diverged, got done"),
    ("report-grid-file-missing", ["report", "--store", OLD, "--grid", NEW + "/my.toml"],
     "grid file not found"),
    ("show-unknown-option", ["show", "--store", OLD, "--bogus"], "unrecognized arguments"),
    # tricks and weights
    ("tricks-no-match", ["tricks", "nosuch*"], "no trick matches 'nosuch*'"),
    ("tricks-unknown-option", ["tricks", "--table"], "unrecognized arguments: --table"),
    ("weights-unknown", ["weights", "vgg"], "invalid choice: 'vgg'"),
    ("weights-exists", ["weights", "inception", "--out", OLD + "/results.sqlite"],
     "exists; pass --force"),
]


def _snapshot(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def template_store(tmp_path_factory):
    """A store holding one done cell (no checkpoint needed: every case fails before that)."""
    root = tmp_path_factory.mktemp("template") / "store"
    cell = tiny_cell()
    with Store(root) as store:
        store.put(Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                         config=cell.to_dict(), status="done", metrics={"modes": 3.0}))
    return root


@pytest.mark.parametrize("argv, message", [pytest.param(*c[1:3], id=c[0], marks=c[3:])
                                           for c in CASES])
def test_bad_input_is_one_line_exit_2_and_the_store_is_untouched(capsys, tmp_path,
                                                                 template_store, argv, message):
    new, old = tmp_path / "new", tmp_path / "old"
    shutil.copytree(template_store, old)
    before = _snapshot(old)
    code = main([a.replace(NEW, str(new)).replace(OLD, str(old)) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("ganbench: error: "), err
    assert "Traceback" not in err and out == ""
    assert message in err, err
    assert not new.exists()
    assert _snapshot(old) == before


@pytest.mark.parametrize("make, message", [
    (lambda: OptimConfig(lr=float("nan")), "lr must be a finite number > 0, got nan"),
    (lambda: OptimConfig(lr="fast"), "lr must be a finite number > 0, got 'fast'"),
    (lambda: OptimConfig(beta1=1.0), "beta1 must be a finite number in [0, 1), got 1.0"),
    (lambda: OptimConfig(beta2=-0.1), "beta2 must be a finite number in [0, 1)"),
    (lambda: TrainConfig(steps=100.0), "steps must be an integer >= 1, got 100.0"),
    (lambda: TrainConfig(steps="100"), "steps must be an integer >= 1, got '100'"),
    (lambda: TrainConfig(steps=True), "steps must be an integer >= 1, got True"),
    (lambda: TrainConfig(log_every=0), "log_every must be >= 1, got 0"),
    (lambda: NetConfig(z_dim=0), "z_dim must be >= 1, got 0"),
    (lambda: NetConfig(depth=0), "depth must be >= 1, got 0"),
    (lambda: NetConfig(width=0), "width must be >= 1, got 0"),
    (lambda: DataConfig("ring8", resolution=-1), "resolution must be >= 1, got -1"),
    (lambda: DataConfig(""), "dataset name must be a non-empty string"),
    (lambda: CellConfig(DataConfig("ring8"), seed=-1), "seed must be >= 0, got -1"),
    (lambda: CellConfig(DataConfig("ring8"), seed=1.0), "seed must be an integer >= 0, got 1.0"),
    (lambda: CellConfig(DataConfig("ring8"), tricks=(TrickSpec.of("a"), TrickSpec.of("a"))),
     "trick 'a' is listed twice"),
    (lambda: TrickSpec("x", version=0), "trick 'x' version must be >= 1"),
    (lambda: CellConfig.from_dict({"data": {"name": "ring8"}, "train": {"stepz": 3}}),
     "not a cell config"),
    (lambda: CellConfig.from_dict({"data": {"name": "ring8"}, "seed": "0"}),
     "seed must be an integer >= 0, got '0'"),
])
def test_config_values_are_validated_in_one_line(make, message):
    """The frozen configs check themselves, so the CLI, grid files and stored records share one
    set of checks naming the key, the value and what is allowed."""
    with pytest.raises(ConfigError) as exc:
        make()
    text = str(exc.value)
    assert message in text and "\n" not in text


def test_valid_edges_are_accepted():
    """The checks refuse only what cannot train: betas of 0 (WGAN-GP's Adam), checkpoint_every 0
    (checkpoint at the end only), integer lrs, the smallest batch."""
    assert OptimConfig(lr=1, beta1=0.0, beta2=0.0).lr == 1
    cell = CellConfig(DataConfig("ring8"), train=TrainConfig(batch_size=2, checkpoint_every=0))
    assert CellConfig.from_dict(cell.to_dict()).cell_id == cell.cell_id


def test_help_shows_defaults_choices_and_a_full_description(capsys):
    from bench.data import dataset_names
    from ganbench import __version__

    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    assert "Benchmark GAN training tricks:" in top and "exit code 2." in top
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--steps STEPS generator updates (default: 2000)" in text
    assert "--device {auto,cpu,cuda,cuda:N}" in text
    # argparse may wrap a name at its hyphen ("stacked- digits")
    assert "one of: " + ", ".join(dataset_names()) in text.replace("- ", "-")
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"ganbench {__version__}\n"


@pytest.mark.parametrize("command", ["run", "status", "report", "compare", "show", "eval", "samples",
                                     "train"])
def test_store_option_help_shows_its_default(capsys, command):
    assert main([command, "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--store STORE results store folder (default: runs/default)" in text
