"""The verdict, aggregate and power tables and the study figures on a synthetic store with known
effects (tests/synthetic_store.py: spectral_norm +0.20 high quality, label_flip none,
instance_noise −0.10, self_attention not applicable; 5 seeds)."""
import math

import numpy as np
import pytest

from bench.report import aggregate, profiles, study
from bench.store.results import load_records
from tests.synthetic_store import SEEDS, build, high_quality


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth-verdict")
    build(root).store.close()
    return load_records(root, memberships=True)


def test_verdict_table_on_a_synthetic_store(df):
    t = study.verdict_table(df[df.grid == "synth"])
    n = t.numbers.set_index(["data", "trick"])
    sn = n.loc[("ring8", "spectral_norm")]
    # Δ reverse_kl of spectral_norm: its seeds paired with the baseline's
    assert sn["n"] == 5 and sn["delta"] < 0
    # 5 seeds: the exact test's smallest p is 0.0625, so no trick can be called helps or hurts,
    # and the table says why
    assert sn["p_perm"] == 0.0625 and sn["verdict"] == "no detectable effect"
    assert sn["reason"] == "5 seeds cannot reach p < 0.05"
    # the probability of improvement sees the real effect (lower reverse_kl on every seed)
    assert sn["poi"] == 1.0
    assert n.loc[("ring8", "instance_noise"), "poi"] == 0.0
    assert n.loc[("ring8", "self_attention"), "verdict"] == "not applicable"
    # Holm over every tested claim of the verdict table
    tested = t.numbers[t.numbers["p_perm"].notna()]
    assert tested["p_holm"].min() >= tested["p_perm"].min()
    assert t.notes[0].startswith("**Test:** exact paired sign-flip") and "Holm" in t.notes[0]
    md = (t.title, [c.text for c in t.rows[0]])
    assert "spectral_norm" in md[1]


def test_verdict_helps_and_hurts_with_enough_seeds():
    from bench.report.stats import differences_ci

    d = differences_ci([-0.4, -0.41, -0.39, -0.42, -0.38, -0.4])  # 6 seeds: floor 0.031
    assert study.verdict_of(d, d.p_perm, "reverse_kl", False) == "helps"
    assert study.verdict_of(d, d.p_perm, "modes", False) == "hurts"
    assert study.verdict_of(d, 0.2, "reverse_kl", False) == "no detectable effect"  # after Holm
    assert study.verdict_of(d, d.p_perm, "reverse_kl", True) == "fragile"


def test_aggregate_table_equals_hand_computation(df):
    scores = study.aggregate_scores(df[df.grid == "synth"])["synth"]
    t = study.aggregate_table(df, "synth", scores)
    n = t.numbers.set_index("trick")
    hq = {label: [high_quality(tricks, s) for s in SEEDS]
          for label, tricks in (("baseline", ()), ("spectral_norm", ("spectral_norm",)))}
    assert n.loc["baseline", "iqm_high_quality"] == pytest.approx(
        aggregate.iqm([hq["baseline"]]))
    assert n.loc["spectral_norm", "iqm_high_quality"] == pytest.approx(
        aggregate.iqm([hq["spectral_norm"]]))
    assert n.loc["spectral_norm", "poi_high_quality"] == pytest.approx(
        aggregate.probability_of_improvement([hq["spectral_norm"]], [hq["baseline"]]))
    lo, hi = n.loc["spectral_norm", ["iqm_high_quality_lo", "iqm_high_quality_hi"]]
    assert lo <= n.loc["spectral_norm", "iqm_high_quality"] <= hi
    assert n.loc["spectral_norm", "poi_high_quality_lo"] > 0.5  # the real effect
    assert n.loc["instance_noise", "poi_high_quality_hi"] < 0.5
    assert "stratified bootstrap" in t.notes[0]


def test_modes_are_normalised_by_the_datasets_mode_count():
    import pandas as pd

    rows = pd.DataFrame([{"status": "done", "seed": 0, "modes": 6.0, "high_quality": 0.5,
                          "protocol": {"num_modes": 8}},
                         {"status": "done", "seed": 1, "modes": 20.0, "high_quality": 0.2,
                          "protocol": {"num_modes": 25}}])
    np.testing.assert_allclose(aggregate.normalised_scores(rows, "modes/K"), [0.75, 0.8])


def test_power_table_lists_every_delta_table(df):
    from bench.report import views

    pool = df[(df.grid == "synth") & (df.dataset == "ring8")]
    t = views.delta_table("t", "t", pool[pool.design == "add-one"], pool, df.attrs["metrics"],
                          ["modes", "high_quality"], reference=views.baseline_of)
    pw = study.power_table([t])
    rows = pw.numbers.set_index("metric")
    assert rows.loc["modes", "n"] == 5 and rows.loc["modes", "floor"] == 0.0625
    assert math.isfinite(rows.loc["high_quality", "detectable"])
    assert any(n.startswith("Power (paired t approximation") for n in t.notes)


def test_study_figures_are_readable(df):
    """Every text >= 8 pt at the figure's size and no two labels overlap (matplotlib's own text
    extents)."""
    recs = study.verdict_table(df).numbers.to_dict("records")
    fig = profiles.verdict_figure(recs, None, keep_open=True)
    assert profiles.text_problems(fig) == []
    profiles.plt.close(fig)
    scores = study.aggregate_scores(df[df.grid == "synth"])["synth"]
    fig = profiles.profile_figure(scores["scores"]["high_quality"],
                                  scores["baseline"]["high_quality"], "high_quality", None,
                                  "synth", keep_open=True)
    assert profiles.text_problems(fig) == []
    profiles.plt.close(fig)


def test_text_problems_catches_small_and_overlapping_text():
    fig, ax = profiles.plt.subplots(figsize=(2, 2))
    ax.text(0.5, 0.5, "tiny", fontsize=5)
    ax.text(0.1, 0.1, "one label", fontsize=9)
    ax.text(0.12, 0.1, "another label", fontsize=9)
    problems = profiles.text_problems(fig)
    profiles.plt.close(fig)
    assert any("tiny" in p for p in problems)
    assert any("overlaps" in p for p in problems)


def test_fragile_mark_in_the_table_and_the_verdict(tmp_path):
    """6 seeds: spectral_norm is ahead of the baseline at half the budget on every seed (stored
    curve) and behind at the end: the table marks its Δ ‡ and the verdict says fragile;
    label_flip is behind at both budgets: not fragile."""
    from bench.core.record import Record
    from bench.report import budget, views
    from tests.synthetic_store import SyntheticStore, cell

    s = SyntheticStore(tmp_path / "store")
    half_full = {(): (4.0, 4.0), ("spectral_norm",): (6.0, 2.0), ("label_flip",): (2.0, 2.0)}
    members = []
    for tricks, (half, full) in half_full.items():
        for seed in range(6):
            c = cell("ring8", tricks, seed)
            wobble = 0.1 * seed  # some spread, same sign on every seed
            curves = {"eval_modes": [[100, 0.0], [250, half + wobble], [500, full + wobble]],
                      "eval_reverse_kl": [[250, 1.0 - half / 10], [500, 1.0 - full / 10]]}
            s.store.put(Record(cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                               config=c.to_dict(), status="done", step=500,
                               metrics={"modes": full + wobble, "high_quality": 0.5,
                                        "reverse_kl": 1.0 - (full + wobble) / 10},
                               curves=curves, protocol={"kind": "2d", "dataset": "ring8",
                                                        "num_generated": 2500, "num_modes": 8}))
            members.append(s.member("add-one", "ring8", c,
                                    "baseline" if not tricks else "variant"))
    s.store.put_grid("frag", {"description": "fragile", "designs": {"ring8": "add-one"}},
                     members)
    s.store.close()
    df = load_records(tmp_path / "store", memberships=True)
    pool = df[df.dataset == "ring8"]
    t = views.delta_table("t", "t", pool, pool, df.attrs["metrics"], ["modes"],
                          reference=views.baseline_of)
    n = t.numbers.set_index("variant")
    assert n.loc["spectral_norm", "d_modes"] == pytest.approx(-2.0)
    assert n.loc["spectral_norm", "d_modes_half"] == pytest.approx(2.0)
    assert bool(n.loc["spectral_norm", "d_modes_fragile"])
    assert not bool(n.loc["label_flip", "d_modes_fragile"])
    cells = {r[0].text: r for r in t.rows}
    col = t.columns.index("Δ modes [95% CI]")
    assert cells["spectral_norm"][col].text.endswith(budget.MARK)
    assert budget.NOTE in t.notes
    v = study.verdict_table(df).numbers.set_index("trick")
    assert v.loc["spectral_norm", "verdict"] == "fragile"  # reverse_kl: the same flip
    assert v.loc["label_flip", "verdict"] != "fragile"
