"""Held-out-seed tuning (bench/schedule/tuning.py, bench/schedule/staged.py): a grid's settings are chosen on the
tuning seeds from stored stage-1 records and trained and reported on evaluation seeds that took
no part in the choice; resumable; `compare` runs the same protocol; `budget = "evals"`."""
import math

import pytest

from bench.cli import main
from bench.core.config import ConfigError
from bench.schedule.grid import evals_steps, full_spec, load_grid
from bench.core.record import Record
from bench.store import Store
from bench.schedule.tuning import choose, resolve

HELD_OUT = """description = "held-out tiny grid"
design = "add-one"
tricks = ["label_flip", "unrolled"]
seeds = [0, 1, 2]
tune_seeds = [100, 101]

[tune]
lr = [5e-4, 2e-3]
"unrolled.k" = [1, 2]

[[data]]
name = "ring8"
steps = 6
batch_size = 16
width = 8
z_dim = 4
depth = 1
"""


@pytest.fixture
def grid_file(tmp_path):
    p = tmp_path / "held.toml"
    p.write_text(HELD_OUT)
    return p


def fake_records(plans, score):
    """A done record per tuning cell, reverse_kl = score(label, setting, seed)."""
    records = {}
    for plan in plans:
        for cand in plan.candidates:
            for seed in plan.tune_seeds:
                cell = cand.cell(seed)
                records[cell.cell_id] = Record(
                    cell.cell_id, cell.variant_id, cell.label, cell.to_dict(), "done", step=6,
                    metrics={"reverse_kl": score(plan.label, dict(cand.setting), seed),
                             "modes": 4.0, "high_quality": 0.1}, protocol={"kind": "2d"})
    return records


def test_selection_and_evaluation_seeds_never_overlap(grid_file):
    grid = load_grid(str(grid_file))
    tune = [m for m in grid.members if m["info"].get("seed_role") == "tune"]
    cells = {c.cell_id: c for c in grid.cells}
    assert tune and {cells[m["cell_id"]].seed for m in tune} == {100, 101}
    assert all(c.seed in (100, 101) for c in grid.cells)  # stage 1 holds no evaluation seed
    stage2 = resolve(grid.plans, fake_records(grid.plans, lambda *a: 1.0))
    assert not stage2.pending and {c.seed for c in stage2.cells} == {0, 1, 2}
    for m in stage2.members:
        assert m["info"]["seed_role"] == "eval" and m["info"]["tuned_on"] == [100, 101]
    # a grid whose seeds overlap is refused, naming both keys
    bad = grid_file.with_name("bad.toml")
    bad.write_text(HELD_OUT.replace("tune_seeds = [100, 101]", "tune_seeds = [2, 100]"))
    with pytest.raises(ConfigError, match=r"seeds \[2\] are both tuning seeds"):
        load_grid(str(bad))


def test_chosen_setting_is_the_hand_computed_best_mean_on_tuning_seeds(grid_file):
    grid = load_grid(str(grid_file))
    table = {  # reverse_kl (lower is better) by (label, lr, k) and seed 100 / 101
        ("baseline", 5e-4, None): (0.9, 0.5), ("baseline", 2e-3, None): (0.2, 1.3),
        ("label_flip", 5e-4, None): (0.6, 0.6), ("label_flip", 2e-3, None): (0.5, 0.8),
        ("unrolled", 5e-4, 1): (1.0, 1.0), ("unrolled", 5e-4, 2): (0.4, 0.7),
        ("unrolled", 2e-3, 1): (0.3, 0.9), ("unrolled", 2e-3, 2): (0.1, 0.9)}

    def score(label, setting, seed):
        return table[(label, setting["lr"], setting.get("unrolled.k"))][seed - 100]

    records = fake_records(grid.plans, score)
    chosen = {p.label: choose(p, records) for p in grid.plans}
    # means: baseline 0.70 / 0.75 -> 5e-4; label_flip 0.60 / 0.65 -> 5e-4;
    # unrolled 1.00, 0.55, 0.60, 0.50 -> lr 2e-3, k 2
    assert chosen["baseline"].setting == {"lr": 5e-4}
    assert chosen["label_flip"].setting == {"lr": 5e-4}
    assert chosen["unrolled"].setting == {"lr": 2e-3, "unrolled.k": 2}
    assert chosen["unrolled"].scores["lr=0.0005, unrolled.k=2"] == [pytest.approx(0.55), 2]
    # a candidate that diverged on one tuning seed is not chosen while another finished on all
    plan = next(p for p in grid.plans if p.label == "label_flip")
    bad = plan.candidates[0].cell(101).cell_id
    records[bad] = Record(bad, "", "label_flip", {}, "diverged")
    assert choose(plan, records).setting == {"lr": 2e-3}
    # a missing tuning record: not decided yet (stage 2 waits for it)
    del records[bad]
    assert choose(plan, records) is None
    assert plan in resolve(grid.plans, records).pending


def run_args(grid_file, store):
    return ["run", "--grid", str(grid_file), "--store", str(store), "--workers", "1",
            "--curve-every", "0"]


def test_two_stage_run_resumes_without_training_a_cell_twice(grid_file, tmp_path, capsys):
    from bench.schedule.executor import run_cells
    from bench.store.results import load_records

    store = tmp_path / "s"
    grid = load_grid(str(grid_file))
    # an earlier run stopped after part of stage 1: the run trains only the rest
    list(run_cells(list(grid.cells)[:5], store, workers=1, progress=False, curve_every=0))
    with Store(store) as s:
        first = {r.cell_id: r.created_at for r in s.records()}
    assert main(run_args(grid_file, store)) == 0
    out = capsys.readouterr().out
    assert "stage 2:" in out and "evaluation seeds [0, 1, 2]" in out
    with Store(store) as s:
        records = {r.cell_id: r for r in s.records()}
    assert all(records[c].created_at == t for c, t in first.items())  # not trained again
    assert all(not r.history for r in records.values())
    # stage 1: 2 lrs x 2 seeds for baseline and label_flip, 2 lrs x 2 k x 2 seeds for unrolled;
    # stage 2: 3 variants x 3 evaluation seeds
    assert len(records) == 8 + 8 + 9
    df = load_records(store, grid="held", memberships=True)
    evals = df[df.seed_role == "eval"]
    assert set(evals.seed) == {0, 1, 2} and set(df[df.seed_role == "tune"].seed) == {100, 101}
    assert all(t == (100, 101) for t in evals.tuned_on)
    # a rerun trains nothing: every record is the stored one
    assert main(run_args(grid_file, store)) == 0
    with Store(store) as s:
        assert {r.cell_id: r.created_at for r in s.records()} == \
            {c: r.created_at for c, r in records.items()}


def test_dry_run_shows_stage_two_after_tuning_and_a_calibrated_estimate(grid_file, tmp_path,
                                                                         capsys):
    assert main(run_args(grid_file, tmp_path / "fresh") + ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stage 2: 9 cells on evaluation seeds [0, 1, 2]: all after tuning" in out
    assert "to train: 25 cells; estimated" in out and "calibrated per-step costs" in out
    assert "no estimate" not in out and not (tmp_path / "fresh").exists()


def test_compare_tunes_on_tuning_seeds_and_reports_on_evaluation_seeds(grid_file, tmp_path,
                                                                      capsys):
    from bench.store.results import load_records

    store = tmp_path / "s"
    assert main(["compare", "--trick", "label_flip", "--grid", str(grid_file), "--store",
                 str(store), "--workers", "1", "--curve-every", "0"]) == 0
    out = capsys.readouterr().out
    assert "ring8  label_flip: " in out and "chosen on tuning seeds [100, 101]" in out
    assert "over 3 evaluation seeds [0, 1, 2]" in out
    df = load_records(store, grid="compare:label_flip@held", memberships=True)
    assert set(df.label) == {"baseline", "label_flip"}
    assert set(df[df.seed_role == "eval"].seed) == {0, 1, 2}
    assert set(df[df.seed_role == "tune"].seed) == {100, 101}
    # the grid's own run reuses compare's cells (the same ids): only unrolled trains
    with Store(store) as s:
        before = {r.cell_id: r.created_at for r in s.records()}
    assert main(run_args(grid_file, store)) == 0
    with Store(store) as s:
        after = {r.cell_id: r for r in s.records()}
    assert all(after[c].created_at == t for c, t in before.items())
    assert {r.label for c, r in after.items() if c not in before} == {"unrolled"}


def test_evals_budget_scales_steps_by_the_tricks_declared_cost(grid_file):
    assert evals_steps(600, (full_spec("unrolled", {"k": 5}),)) == 100  # (2 + 2*5)/2 = 6
    assert evals_steps(600, (full_spec("unrolled", {"k": 5, "first_order": True}),)) == 171
    assert evals_steps(550, (full_spec("wgan_gp"),)) == 100  # n_critic 5: (10 + 1)/2
    assert evals_steps(600, (full_spec("label_flip"),)) == 600
    text = HELD_OUT.replace('design = "add-one"', 'design = "add-one"\nbudget = "evals"')
    path = grid_file.with_name("evals.toml")
    path.write_text(text.replace("steps = 6", "steps = 60"))
    grid = load_grid(str(path))
    steps = {(c.label, dict(c.tricks[0].params).get("k") if c.tricks else None): c.train.steps
             for c in grid.cells}
    assert steps[("baseline", None)] == 60 and steps[("label_flip", None)] == 60
    assert steps[("unrolled", 1)] == 30 and steps[("unrolled", 2)] == 20  # costs 2 and 3
    bad = grid_file.with_name("bad.toml")
    bad.write_text(text.replace('budget = "evals"', 'budget = "flops"'))
    with pytest.raises(ConfigError, match='budget = .flops.: expected "steps" or "evals" or'):
        load_grid(str(bad))


def test_time_budget_scales_steps_by_the_calibrated_time_ratio(grid_file):
    from bench.schedule.grid import time_steps
    from bench.schedule.step_costs import RATIO

    spec = (full_spec("spectral_norm"),)
    assert time_steps(1000, "2d", spec) == round(1000 / RATIO["2d"]["spectral_norm"])
    assert time_steps(1000, "2d", ()) == 1000


def test_tuned_trick_params_need_tuning_seeds(grid_file):
    path = grid_file.with_name("same.toml")
    path.write_text(HELD_OUT.replace("tune_seeds = [100, 101]\n", ""))
    with pytest.raises(ConfigError, match="only with tune_seeds"):
        load_grid(str(path))


def test_every_builtin_trick_has_a_calibrated_cost_for_its_data_kinds():
    from bench.trickapi.registry import get_trick_class, list_tricks
    from bench.schedule.step_costs import RATIO, ms_per_step

    for name in list_tricks("*"):
        for kind in get_trick_class(name).applies_to:
            assert name in RATIO[kind], (name, kind)
    # the fixed per-step share: a net 8x smaller is not 8x cheaper
    small, big = ms_per_step("2d", 64, 64), ms_per_step("2d", 256, 128)
    assert 0.4 < small / big < 0.55 and math.isclose(big, 6.33)


def test_held_out_report_pairs_each_variant_with_the_baseline_at_its_own_chosen_setting(
        grid_file, tmp_path):
    """Synthetic records, no training: the baseline is chosen at lr 5e-4, label_flip at 2e-3;
    the held-out Δ pairs label_flip's evaluation seeds with the baseline's at 5e-4."""
    from bench.report.build import write_report
    from bench.report.tuned import verdict_lines
    from bench.store.results import load_records

    grid = load_grid(str(grid_file))
    lr_good = {"baseline": 5e-4, "label_flip": 2e-3, "unrolled": 5e-4}

    def score(label, setting, seed):  # lower reverse_kl at the label's good lr
        return 0.5 if setting["lr"] == lr_good[label] else 1.5

    records = fake_records(grid.plans, score)
    stage2 = resolve(grid.plans, records)
    assert {p.label: stage2.choices[i].setting["lr"] for i, p in enumerate(grid.plans)} == \
        {"baseline": 5e-4, "label_flip": 2e-3, "unrolled": 5e-4}
    evals = {("baseline", 0): 1.0, ("baseline", 1): 1.2, ("baseline", 2): 0.8,
             ("label_flip", 0): 0.7, ("label_flip", 1): 0.8, ("label_flip", 2): 0.6,
             ("unrolled", 0): 1.0, ("unrolled", 1): 1.3, ("unrolled", 2): 0.9}
    for cell in stage2.cells:
        records[cell.cell_id] = Record(cell.cell_id, cell.variant_id, cell.label,
                                       cell.to_dict(), "done", step=6,
                                       metrics={"reverse_kl": evals[(cell.label, cell.seed)],
                                                "modes": 4.0, "high_quality": 0.1},
                                       protocol={"kind": "2d"})
    with Store(tmp_path / "s") as store:
        for r in records.values():
            store.put(r)
        store.put_grid("held", grid.spec, list(grid.members) + stage2.members)
    report = write_report(tmp_path / "s", tmp_path / "out", grid="held", samples=False)
    main_table = next(t for t in report.tables if t.name.endswith("ring8-add-one"))
    row = main_table.numbers.set_index("variant")
    flip = next(v for v in row.index if v.startswith("label_flip"))
    # paired over seeds 0-2: (0.7 - 1.0, 0.8 - 1.2, 0.6 - 0.8) -> mean -0.3
    assert row.loc[flip, "d_reverse_kl"] == pytest.approx(-0.3)
    assert row.loc[flip, "d_reverse_kl_n"] == 3
    tuning = next(t for t in report.tables if t.name.endswith("ring8-add-one-tuning"))
    assert any("optimistic" in n for n in tuning.notes)
    assert "evaluation seeds [0, 1, 2]" in " ".join(main_table.notes)
    # index.md opens with the verdict, at the held-out setting (issue 19, Must 6)
    index = (tmp_path / "out" / "index.md").read_text()
    assert index.index("## Verdict") < index.index("## Protocol")
    verdict = next(t for t in report.study_tables if t.name == "verdict")
    v = verdict.numbers.set_index("trick")
    flip_v = next(x for x in v.index if x.startswith("label_flip"))
    assert v.loc[flip_v, "delta"] == pytest.approx(-0.3) and v.loc[flip_v, "setting"] == \
        "held out"
    assert v.loc[flip_v, "verdict"] == "no detectable effect"  # 3 seeds: p >= 0.25
    assert any("chosen on the tuning seeds" in n for n in verdict.notes)
    lines = verdict_lines(load_records(tmp_path / "s", grid="held", memberships=True),
                          ["label_flip"])
    # 3 evaluation seeds: the exact sign-flip test cannot go below p = 0.25 (issue 19, Must 3)
    assert lines[0].startswith("ring8  label_flip: no detectable effect: Δ reverse_kl -0.3")
    assert "sign-flip p 0.25" in lines[0] and "smallest possible 0.25" in lines[0]
    # a grid that pre-registers a primary metric: the line tests that one, Holm per dataset
    lines = verdict_lines(load_records(tmp_path / "s", grid="held", memberships=True),
                          ["label_flip"], specs={"held": {"primary": {"ring8": "high_quality"}}})
    assert lines[0].startswith("ring8  label_flip: no detectable effect: Δ high_quality +0")
    assert "within each dataset" in lines[-1]


def test_verdict_follows_the_metric_direction():
    from bench.report.stats import Delta
    from bench.report.tuned import verdict

    lower = Delta(-0.3, -0.5, -0.1, 6, 0.01, "t", p_perm=0.03125, p_floor=0.03125)
    assert verdict(lower, "reverse_kl") == "helps" and verdict(lower, "modes") == "hurts"
    assert verdict(lower, "reverse_kl", p=0.2) == "no detectable effect"  # after Holm
    assert verdict(Delta(0.1, -0.2, 0.4, 5, 0.5, "t", p_perm=0.5), "fid") == \
        "no detectable effect"
    # the t interval excludes 0 but the sign-flip test cannot reject at 5 seeds
    assert verdict(Delta(-0.3, -0.5, -0.1, 5, 0.01, "t", p_perm=0.0625), "fid") == \
        "no detectable effect"
