"""Failure flags: each detector fires on a curve showing its failure and not on a healthy one,
at the right step; the trainer records them and can stop on a hard one."""
from pathlib import Path

import pandas as pd
import pytest

from bench.core import flags as F
from bench.core.config import ConfigError, TrainConfig
from bench.core.record import Record
from tests.tiny import tiny_cell, tiny_trainer


def curve(values, every=100):
    return [[every * (i + 1), float(v)] for i, v in enumerate(values)]


# a healthy NS-GAN run: D near 2 ln 2 minus a bit, G near ln 2 plus a bit, slow drift
HEALTHY_D = [1.30, 1.25, 1.22, 1.20, 1.21, 1.19, 1.18, 1.20, 1.19, 1.18]
HEALTHY_G = [0.80, 0.85, 0.88, 0.90, 0.89, 0.91, 0.92, 0.90, 0.91, 0.92]


def test_healthy_curves_raise_no_flag():
    curves = {"d_adv": curve(HEALTHY_D), "g_adv": curve(HEALTHY_G),
              "eval_modes": curve([3, 6, 8, 7, 8, 7, 8, 8, 7, 8])}  # one-mode wobble is noise
    assert F.detect_flags(curves) == []


def test_d_collapse_needs_consecutive_points_below_the_threshold():
    below = F.D_COLLAPSE_LOSS / 2
    d = [1.2, 0.5, below, 0.3, below, below, below, below]
    flag = F.d_collapse(curve(d))
    assert flag["flag"] == "d_collapse" and flag["step"] == 500  # first of three in a row
    assert F.d_collapse(curve([1.2, below, below, 0.3, below, below])) is None


def test_g_runaway_needs_a_sustained_high_loss_that_does_not_fall():
    g = [0.9, 2.0, 6.0, 7.0, 8.5, 9.0]
    flag = F.g_runaway(curve(g))
    assert flag["flag"] == "g_runaway" and flag["step"] == 300
    assert F.g_runaway(curve([0.9, 6.0, 7.0, 1.0, 6.0, 5.5])) is None  # interrupted
    assert F.g_runaway(curve([0.9, 9.0, 7.0, 6.0])) is None  # high but recovering


def test_loss_flags_only_for_the_bce_baseline_loss():
    curves = {"d_adv": curve([0.0] * 5), "g_adv": curve([10, 11, 12, 13])}
    assert {f["flag"] for f in F.detect_flags(curves)} == {"d_collapse", "g_runaway"}
    # a WGAN critic loss near 0 says nothing about collapse
    assert F.detect_flags(curves, bce_loss=False) == []


def test_mode_drop_flags_a_lasting_fall_from_the_maximum():
    flag = F.mode_drop(curve([2, 8, 7, 4, 3, 3]), "eval_modes")
    # the line is 8 - 0.4 * 8 = 4.8: first point at or below it after the peak is step 400
    assert flag["flag"] == "mode_drop" and flag["step"] == 400 and "from 8" in flag["detail"]
    assert F.mode_drop(curve([2, 8, 6, 8, 7]), "eval_modes") is None  # wobble
    assert F.mode_drop(curve([2, 8, 3, 4, 8]), "eval_modes") is None  # recovered by the end
    assert F.mode_drop(curve([1, 0, 0]), "eval_modes") is None  # below MODE_DROP_MIN
    flags = F.detect_flags({"eval_stacked_modes": curve([100, 900, 400])})
    assert [f["flag"] for f in flags] == ["mode_drop"]


def test_oscillation_is_a_large_reversing_swing():
    swing = [1.0 + (0.8 if i % 2 else -0.8) for i in range(F.OSCILLATION_WINDOW)]
    flag = F.oscillation(curve([1.0] * 4 + swing), "d_adv")
    assert flag["flag"] == "oscillation" and flag["step"] == 500  # start of the window
    small = [1.0 + (0.05 if i % 2 else -0.05) for i in range(F.OSCILLATION_WINDOW)]
    assert F.oscillation(curve(small), "d_adv") is None  # reverses, but small
    ramp = [0.5 + 0.3 * i for i in range(F.OSCILLATION_WINDOW)]
    assert F.oscillation(curve(ramp), "d_adv") is None  # large moves, one direction
    jitter = [0.01 + (0.01 if i % 2 else 0.0) for i in range(F.OSCILLATION_WINDOW)]
    assert F.oscillation(curve(jitter), "d_adv") is None  # relative swing, absolute noise
    assert F.oscillation(curve(swing[:-1]), "d_adv") is None  # too few points


def test_flags_are_ordered_by_step_and_formatted_in_the_summary_line():
    curves = {"d_adv": curve([1.2, 0.01, 0.01, 0.01]), "eval_modes": curve([8, 1, 1])}
    flags = F.detect_flags(curves)
    assert [(f["flag"], f["step"]) for f in flags] == [("d_collapse", 200), ("mode_drop", 200)]
    record = Record(cell_id="c" * 16, variant_id="v", label="baseline",
                    config=tiny_cell().to_dict(), status="done", flags=flags,
                    metrics={"modes": 1.0})
    assert record.summary_line().endswith("flags=d_collapse@200,mode_drop@200")
    assert F.format_flags(flags) == "d_collapse@200,mode_drop@200"


def test_a_flag_on_both_loss_curves_is_named_once_in_summaries_and_counted_once_per_cell():
    from bench.report.views import flags_text
    from bench.store.results import _record_row

    swing = [1.0, 2.0] * 6
    flags = F.detect_flags({"d_adv": curve(swing), "g_adv": curve(swing)})
    assert [f["flag"] for f in flags] == ["oscillation", "oscillation"]  # details keep both
    assert F.format_flags(flags) == f"oscillation@{flags[0]['step']}"
    record = Record(cell_id="c" * 16, variant_id="v", label="baseline",
                    config=tiny_cell().to_dict(), status="done", flags=flags,
                    metrics={"modes": 1.0})
    row = _record_row(record, Path("."))
    assert row["run_flags"] == ("oscillation",) and len(row["flag_details"]) == 2
    # a variant's flags column counts cells: 1 of its 2 seeds oscillated
    assert flags_text(pd.DataFrame({"run_flags": [row["run_flags"], ()]})) == "oscillation"
    assert flags_text(pd.DataFrame({"run_flags": [row["run_flags"]] * 2})) == "oscillation×2"


def test_trainer_records_flags_of_its_curves():
    t = tiny_trainer("ring8", [], steps=4)
    t.train()
    t.curves["d_adv"] = curve([0.001] * 4)  # as if D had collapsed
    record = t.make_record("done")
    assert [f["flag"] for f in record.flags] == ["d_collapse"]


def test_stop_on_is_optional_in_the_cell_id_and_validated():
    base = tiny_cell("ring8", [])
    hard = base.replace(train=TrainConfig(**{**base.train.__dict__, "stop_on": "hard"}))
    assert "stop_on" not in base.to_dict()["train"] and hard.to_dict()["train"]["stop_on"] == "hard"
    assert hard.cell_id != base.cell_id
    with pytest.raises(ConfigError, match="stop_on"):
        TrainConfig(stop_on="soft")


def _collapsing(stop_on: str):
    cell = tiny_cell("ring8", [], steps=30, lr=0.05)
    cell = cell.replace(train=TrainConfig(**{**cell.train.__dict__, "stop_on": stop_on}))
    from bench.train import Trainer

    t = Trainer(cell, device="cpu", progress=False)
    # a D that wins outright: fakes pushed far from the reals, so its BCE loss goes to ~0
    with __import__("torch").no_grad():
        t.nets.G.synthesis.to_out.bias.add_(50.0)
    return t


def test_stop_on_hard_ends_the_cell_at_the_log_point_that_shows_the_flag():
    t = _collapsing("hard")
    status, reason = t.train()
    assert status == "diverged" and reason.startswith("stopped on failure flag ")
    assert t.step < 30
    record = t.make_record(status, reason)
    hard = F.hard_flags(record.flags)
    assert hard and reason.startswith(f"stopped on failure flag {hard[0]['flag']} ")
    # log_every is 1: it stopped at the first log point where the flag showed, not later
    earlier = {k: v[:-1] for k, v in t.curves.items()}
    assert F.hard_flags(F.detect_flags(earlier)) == []
    plain = _collapsing("")  # off by default: the same run trains to the budget
    assert plain.train() == ("done", "") and plain.step == 30
    assert F.hard_flags(plain.make_record("done").flags)


def test_a_grid_can_set_stop_on_and_a_bad_value_is_one_line(tmp_path):
    from bench.schedule.grid import load_grid

    grid = tmp_path / "g.toml"
    grid.write_text('design = "baseline"\nseeds = [0]\n[[data]]\nname = "ring8"\nsteps = 5\n'
                    'stop_on = "hard"\n')
    cells = load_grid(str(grid)).cells
    assert cells and all(c.train.stop_on == "hard" for c in cells)
    grid.write_text('design = "baseline"\n[[data]]\nname = "ring8"\nstop_on = "soft"\n')
    with pytest.raises(ConfigError, match=r"g\.toml: \[\[data\]\] #1 stop_on must be") as err:
        load_grid(str(grid))
    assert "\n" not in str(err.value)
