"""Degenerate-run checks (bench/core/chance.py): D's loss at its chance value, and final metrics
no better than a chance reference; on synthetic curves and on the committed records."""
import json
import math
from pathlib import Path

import pytest

from bench.core.chance import (AT_CHANCE_Z, D_CHANCE_SHARE, D_CHANCE_TOL, HOLDS_D_AT_CHANCE,
                               KEEPS_D_LOSS, LOSS_TRICKS, TARGET_TRICKS, at_chance, d_at_chance,
                               d_chance_value, d_check)
from bench.core.metric_directions import METRIC_DIRECTIONS

ROOT = Path(__file__).resolve().parents[1]
LN2 = math.log(2)


def records(path: str) -> list[dict]:
    return [json.loads(line) for line in (ROOT / path).read_text().splitlines() if line.strip()]


def tricks_of(rec: dict) -> dict:
    return {t["name"]: t.get("params", {}) for t in rec["config"]["tricks"]}


def test_chance_values_by_loss():
    assert d_chance_value({})[0] == pytest.approx(2 * LN2)
    assert d_chance_value({"unrolled": {}, "gradient_penalty": {}})[0] == pytest.approx(2 * LN2)
    # one-sided smoothing to 0.9: the best constant D outputs p = 0.45
    p = 0.45
    assert d_chance_value({"one_sided_label_smoothing": {"real": 0.9}})[0] == pytest.approx(
        -2 * (p * math.log(p) + (1 - p) * math.log(1 - p)))
    # symmetric targets keep 2 ln 2: two-sided smoothing, flips, and both together
    for tricks in ({"label_smoothing": {"real": 0.9, "fake": 0.1}}, {"label_flip": {"fraction": 0.2}},
                   {"label_flip": {"fraction": 0.2}, "label_smoothing": {"real": 0.9, "fake": 0.1}}):
        assert d_chance_value(tricks)[0] == pytest.approx(2 * LN2)
    assert d_chance_value({"relativistic": {"variant": "pairing"}})[0] == pytest.approx(LN2)
    assert d_chance_value({"relativistic": {"variant": "average"}})[0] == pytest.approx(2 * LN2)
    # D2GAN at alpha 0.2, beta 0.1: -a ln a + a + b - b ln b
    assert d_chance_value({"dual_discriminator": {"alpha": 0.2, "beta": 0.1}})[0] == pytest.approx(
        -0.2 * math.log(0.2) + 0.2 + 0.1 - 0.1 * math.log(0.1))
    value, why = d_chance_value({"wgan_gp": {}})
    assert value is None and "critic" in why
    value, why = d_chance_value({"lsgan_loss": {}})
    assert value is None and "lsgan_loss" in why


def test_every_builtin_trick_is_classified():
    """A trick that replaces D's loss or changes its targets has its own chance value: each
    built-in must be in exactly one table (a new trick fails here until it is classified)."""
    from bench.trickapi.registry import get_trick_class, list_tricks
    from bench.trickapi.trick import overrides

    builtin = [n for n in list_tricks() if get_trick_class(n).__module__.startswith("tricks.")]
    assert builtin
    for name in builtin:
        cls = get_trick_class(name)
        owns_loss = "adversarial_loss" in cls.slots or overrides(cls, "adversarial_loss")
        tables = [name in KEEPS_D_LOSS, name in TARGET_TRICKS, name in LOSS_TRICKS]
        assert sum(tables) == 1, name
        assert (name in LOSS_TRICKS) == owns_loss, name
        assert (name in TARGET_TRICKS) == overrides(cls, "targets"), name
        if overrides(cls, "adversarial_weight") and name in KEEPS_D_LOSS:
            assert cls().adversarial_weight("d") == 1.0, name


def flat(level: float, n: int = 100, wiggle: float = 0.003, every: int = 250) -> list:
    return [[every * (i + 1), level + wiggle * math.sin(i)] for i in range(n)]


def test_flat_curve_at_chance_flags_with_step_and_evidence():
    f = d_at_chance(flat(2 * LN2), 2 * LN2, "2 ln 2")
    assert f["flag"] == "d_at_chance" and f["step"] == 250
    assert "100/100 log points" in f["detail"] and "2 ln 2" in f["detail"]
    # the same curve against another loss's chance value is not at chance
    assert d_at_chance(flat(2 * LN2), LN2) is None


def test_learning_curve_that_returns_briefly_does_not_flag():
    """D learns (its loss drops), then comes back near chance for a few log points as G catches
    up, and leaves again: not 'at chance for most of training'."""
    values = ([2 * LN2] * 3 + [1.3 - 0.03 * i for i in range(10)] + [1.0] * 40
              + [2 * LN2 - 0.005] * 8 + [1.15] * 39)
    curve = [[100 * (i + 1), v] for i, v in enumerate(values)]
    assert len(curve) == 100 and d_at_chance(curve, 2 * LN2) is None


def test_share_threshold():
    n = 100
    near = math.ceil(D_CHANCE_SHARE * n)
    at = [[i, 2 * LN2] for i in range(near)] + [[near + i, 1.0] for i in range(n - near)]
    below = [[i, 2 * LN2] for i in range(near - 1)] + [[near + i, 1.0] for i in range(n - near + 1)]
    assert d_at_chance(at, 2 * LN2) is not None
    assert d_at_chance(below, 2 * LN2) is None
    off = [[i, 2 * LN2 + 1.5 * D_CHANCE_TOL] for i in range(n)]
    assert d_at_chance(off, 2 * LN2) is None
    assert d_at_chance(flat(2 * LN2, n=3), 2 * LN2) is None  # too short to say


def _flag(rec: dict):
    value, how = d_check(tricks_of(rec))
    return None if value is None else d_at_chance(rec["curves"].get("d_adv", []), value, how)


def test_committed_paper_2d_records_flag():
    """The review: every BCE cell of paper-2d sits at 2 ln 2 for 25,000 steps, dual_discriminator
    at its constant optimum; wgan_gp has no chance value."""
    old = "results/paper-2d-glr1e-3/records.jsonl"  # the first paper-2d run, at G lr 1e-3
    recs = [r for r in records(old) if r["status"] == "done"]
    assert all(r["config"]["train"]["g_optim"]["lr"] == 1e-3 for r in recs)
    by_label: dict[str, list] = {}
    for r in recs:
        by_label.setdefault(r["label"], []).append(_flag(r))
    for label in ("baseline", "unrolled", "minibatch_stddev", "dual_discriminator"):
        assert len(by_label[label]) == 10 and all(by_label[label]), label
    assert not any(by_label["wgan_gp"])
    assert "1.386" in by_label["baseline"][0]["detail"]
    assert "0.852" in by_label["dual_discriminator"][0]["detail"]


def test_committed_learning_records_do_not_flag():
    recs = [r for r in records("results/previous-default/records.jsonl")
            if r["status"] == "done" and r["label"] == "baseline"
            and r["config"]["data"]["name"] == "ring8"]
    assert len(recs) >= 3
    assert not any(_flag(r) for r in recs)


CHANCE = [{"label": "chance: uniform ring", "metrics": {
    "modes": [8.0] * 5, "high_quality": [0.040, 0.045, 0.035, 0.050, 0.030],
    "reverse_kl": [0.03, 0.02, 0.05, 0.04, 0.01]}}]
HEAD = ["modes", "high_quality", "reverse_kl"]


def test_at_chance_when_no_metric_beats_the_reference():
    f = at_chance({"modes": 5, "high_quality": 0.02, "reverse_kl": 0.73}, CHANCE, HEAD,
                  METRIC_DIRECTIONS, step=25000)
    assert f["flag"] == "at_chance" and f["step"] == 25000
    assert "uniform ring" in f["detail"] and "high_quality 0.02 vs 0.04 ± 0.0079" in f["detail"]


def test_beating_chance_beyond_seed_noise_on_one_metric_is_enough():
    hq = CHANCE[0]["metrics"]["high_quality"]
    mean = sum(hq) / 5
    sd = math.sqrt(sum((x - mean) ** 2 for x in hq) / 4)
    worse = {"modes": 5, "reverse_kl": 0.73}
    assert at_chance({**worse, "high_quality": mean + AT_CHANCE_Z * sd + 1e-6}, CHANCE, HEAD,
                     METRIC_DIRECTIONS) is None
    assert at_chance({**worse, "high_quality": mean + AT_CHANCE_Z * sd - 1e-6}, CHANCE, HEAD,
                     METRIC_DIRECTIONS) is not None
    # a reference with no spread (8 of 8 modes every seed) cannot be beaten on modes
    assert at_chance({"modes": 8}, CHANCE, HEAD, METRIC_DIRECTIONS) is not None
    # metrics the reference lacks are not compared
    assert at_chance({"fid": 1.0}, CHANCE, HEAD + ["fid"], METRIC_DIRECTIONS) is None


def test_r1_holds_d_at_chance_by_design_so_only_the_metrics_judge_it():
    """R1 pulls D's gradient on the real data to 0: its D loss sits at 2 ln 2 while G learns, so
    the D-loss check is skipped for its cells (with the reason) and at_chance alone applies."""
    assert set(HOLDS_D_AT_CHANCE) <= KEEPS_D_LOSS  # the loss is still BCE; only the check differs
    value, why = d_check({"gradient_penalty": {}})
    assert value is None and "R1" in why and "at_chance" in why
    assert d_check({"unrolled": {}, "gradient_penalty": {"variant": "r1", "weight": 10.0}})[0] is None
    # DRAGAN pulls the norm to 1, and weight 0 is no penalty: both keep the D-loss check
    assert d_check({"gradient_penalty": {"variant": "dragan"}})[0] == pytest.approx(2 * LN2)
    assert d_check({"gradient_penalty": {"weight": 0.0}})[0] == pytest.approx(2 * LN2)
    assert d_check({})[0] == d_chance_value({})[0]
    assert d_check({"wgan_gp": {}})[0] is None


def test_report_flags_r1_cells_by_metrics_only():
    """On synthetic cells (bench.report.validity.cell_flags): the same flat D-loss curve at 2 ln 2
    flags a baseline cell, not an R1 cell; an R1 cell whose metrics are at chance is still
    flagged at_chance."""
    from bench.report.validity import cell_flags

    def row(tricks, metrics):
        return {"status": "done", "tricks": tricks, "trick_params": {}, "step": 2000,
                "curves": {"d_adv": flat(2 * LN2)}, **metrics}
    learned = {"modes": 8, "high_quality": 0.15, "reverse_kl": 0.05}
    chance = {"modes": 5, "high_quality": 0.02, "reverse_kl": 0.73}
    names = lambda r: [f["flag"] for f in cell_flags(r, CHANCE, HEAD)]  # noqa: E731
    assert names(row(["gradient_penalty"], learned)) == []
    assert names(row(["gradient_penalty"], chance)) == ["at_chance"]
    assert names(row([], learned)) == ["d_at_chance"]
    assert names(row([], chance)) == ["d_at_chance", "at_chance"]


def test_committed_r1_cells_no_longer_flag_while_the_rest_do_not_change():
    """The stored runs behind the rule: every R1 ring8 cell of cpu-default and previous-default
    that the D-loss check used to flag is now unflagged, and no other cell changes."""
    for path in ("results/cpu-default/records.jsonl", "results/previous-default/records.jsonl"):
        recs = [r for r in records(path) if r["status"] == "done"]
        was = [r for r in recs if "gradient_penalty" in tricks_of(r)
               and d_chance_value(tricks_of(r))[0] is not None
               and d_at_chance(r["curves"].get("d_adv", []), d_chance_value(tricks_of(r))[0])]
        assert len(was) >= 5, path
        assert not any(_flag(r) for r in was)
        for r in recs:
            if "gradient_penalty" not in tricks_of(r):
                value, how = d_chance_value(tricks_of(r))
                old = None if value is None else d_at_chance(r["curves"].get("d_adv", []), value, how)
                assert (old is None) == (_flag(r) is None), r["label"]


def test_committed_pacgan_records_flag_the_2_epoch_grid_and_no_25_epoch_cell():
    """The same setup at two budgets: at 2 epochs D sat at 2 ln 2 in most grid cells (the
    report withheld their Δ); at 25 epochs D left its chance loss in all 20 cells."""
    long = [r for r in records("results/pacgan-t1-cpu/records.jsonl") if r["status"] == "done"]
    assert len(long) == 20 and all(r["step"] == 25000 for r in long)
    assert not any(_flag(r) for r in long)
    short = [r for r in records("results/pacgan-t1-cpu-2epochs/records.jsonl")
             if r["status"] == "done"]
    flagged = {(r["config"]["data"]["name"], r["label"], r["config"]["seed"])
               for r in short if _flag(r)}
    assert {d for d, _, _ in flagged} == {"grid25-pacgan"}  # the ring learned at 2 epochs
    assert sum(label == "packing" for _, label, _ in flagged) == 4
    assert sum(label == "baseline" for _, label, _ in flagged) == 2
