"""`ganbench run` around the scheduler: the resume command keeps every option, --dry-run refuses
what a run refuses and counts retried cells, and `make run` writes the report only after a run
that finished (0) or had failed cells (1)."""
import argparse
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from bench.cli import main, make_parser
from bench.cli.cmd_run import resume_command
from bench.core.record import Record
from bench.schedule.grid import load_grid
from bench.store import Store

ROOT = Path(__file__).resolve().parents[1]


def _run_parser() -> argparse.ArgumentParser:
    sub = next(a for a in make_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["run"]


def _non_default(action: argparse.Action) -> list[str]:
    """Command-line words that set `action` to something other than its default."""
    option = action.option_strings[-1]
    if isinstance(action, argparse._StoreTrueAction):
        return [option]
    if action.choices:
        return [option, next(c for c in action.choices if c != action.default)]
    if action.type is int:
        return [option, "3"]
    return [option, "a b'c"]  # quoting: a space and a quote


def test_the_resume_command_parses_back_to_the_same_options():
    """Every option of `run`, each set to a non-default value, survives the resume command: the
    test walks the parser, so an option added later is covered without editing it."""
    # -q / -v say how much to print, not what to train: a resume need not repeat them
    actions = [a for a in _run_parser()._actions
               if a.option_strings and a.dest not in ("help", "grid", "store", "quiet", "verbose")]
    words = ["run", "--grid", "my grid.toml", "--store", "st ore"]
    for action in actions:
        words += _non_default(action)
    args = make_parser().parse_args(words)
    for action in actions:  # the namespace really has every option away from its default
        assert getattr(args, action.dest) != action.default, action.dest
    resumed = shlex.split(resume_command(args))
    assert resumed[0] == "ganbench"
    assert vars(make_parser().parse_args(resumed[1:])) == vars(args)
    for option in ("--retry", "--device", "--cells-per-gpu", "--curve-every", "--eval-seed",
                   "--metrics", "--extractor", "--n", "--inception-weights", "--ref-samples",
                   "--stacked-samples", "--data-root", "--download"):
        assert option in resumed


def test_the_resume_command_leaves_defaults_out():
    args = make_parser().parse_args(["run", "--eval-seed", "0", "--curve-every", "0"])
    args.device = None  # `main` turns --device auto into None
    assert resume_command(args) == ("ganbench run --grid cpu-default --store runs/default "
                                    "--eval-seed 0 --curve-every 0")


GRID = """
description = "dry"
design = "add-one"
tricks = ["label_smoothing"]
seeds = [0]

[[data]]
name = "{name}"
steps = 5
batch_size = {batch}
width = 8
{extra}
"""


@pytest.mark.parametrize("name, batch, extra, store, error", [
    ("ring8", 16, "resolution = 16", "s", "resolution must not be set"),
    ("digits", 16, "resolution = 7", "s", "resolution 7 not supported for digits"),
    ("ring8", 60_000, "", "s", "larger than the ring8 training set"),  # within the bound
    ("ring8", 10 ** 8, "", "s", "above the limit of 65536"),
    ("ring8", 16, "", "plain", "is not a folder"),
    ("ring8", 16, "", "plain/sub", "is not a folder"),
])
def test_a_dry_run_refuses_what_a_run_refuses_and_writes_nothing(
        tmp_path, capsys, name, batch, extra, store, error):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID.format(name=name, batch=batch, extra=extra))
    (tmp_path / "plain").write_text("not a store")
    argv = ["run", "--grid", str(grid), "--store", str(tmp_path / store), "--workers", "1"]
    for extra_args in (["--dry-run"], []):
        assert main(argv + extra_args) == 2
        assert error in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert (tmp_path / "plain").read_text() == "not a store"


def test_a_dry_run_counts_cells_retried_by_retry_as_to_train(tmp_path, capsys):
    grid = tmp_path / "g.toml"
    grid.write_text(GRID.format(name="ring8", batch=16, extra=""))
    store = tmp_path / "s"
    baseline, variant = load_grid(str(grid)).cells
    with Store(store) as s:
        for cell, status in ((baseline, "done"), (variant, "failed")):
            s.put(Record(cell_id=cell.cell_id, variant_id=cell.variant_id, label=cell.label,
                         config=cell.to_dict(), status=status))
    argv = ["run", "--grid", str(grid), "--store", str(store), "--dry-run"]
    assert main(argv) == 0
    assert "nothing to train" in capsys.readouterr().out
    assert main(argv + ["--retry", "failed"]) == 0
    out = capsys.readouterr().out
    assert "1 done, 1 failed (to train again)" in out
    assert "to train: 1 cells" in out and "nothing to train" not in out


@pytest.mark.parametrize("status, reported", [(0, True), (1, True), (2, False), (130, False),
                                              (143, False)])
def test_make_run_writes_the_report_only_after_status_0_or_1(tmp_path, status, reported):
    """The Makefile's `run` recipe with a stand-in `ganbench` that exits with `status`."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    log = tmp_path / "calls"
    fake = venv / "bin" / "ganbench"
    fake.write_text(f'#!/bin/sh\necho "$1" >> {log}\n[ "$1" = run ] && exit {status}\nexit 0\n')
    fake.chmod(0o755)
    installed = venv / ".installed"  # newer than pyproject.toml: `install` does nothing
    installed.touch()
    future = time.time() + 3600
    os.utime(installed, (future, future))
    proc = subprocess.run(["make", "-s", "-C", str(ROOT), "run", f"VENV={venv}", "GRID=g",
                           f"STORE={tmp_path / 's'}"], capture_output=True, text=True)
    assert log.read_text().split() == (["run", "report"] if reported else ["run"])
    if status == 0:
        assert proc.returncode == 0, proc.stderr
    else:  # make fails and names the recipe's status, which is run's
        assert proc.returncode != 0 and f"Error {status}" in proc.stderr
