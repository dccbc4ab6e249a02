"""Statistics of the tables, checked against hand computations and a store with known effects."""
import math

import numpy as np
import pandas as pd
import pytest

from bench.report import stats, views
from bench.store.results import load_records
from tests.synthetic_store import FACTORS, SEEDS, build, high_quality


@pytest.fixture(scope="module")
def df(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    build(root).store.close()
    return load_records(root, memberships=True)


def test_paired_delta_and_t_interval_by_hand():
    v = pd.Series([1.0, 2.0, 4.0, 3.0], index=[0, 1, 2, 3])
    r = pd.Series([0.5, 1.0, 2.0, 9.9, 1.5], index=[0, 1, 2, 7, 3])  # seed 7 has no partner
    d = stats.paired_delta(v, r)
    diffs = [0.5, 1.0, 2.0, 1.5]
    mean = sum(diffs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 3)
    half = 3.182446305284263 * sd / 2  # t(0.975, 3) * sd / sqrt(4)
    assert d.n == 4 and d.delta == pytest.approx(mean)
    assert (d.lo, d.hi) == (pytest.approx(mean - half), pytest.approx(mean + half))
    tstat = mean / (sd / 2)
    assert d.p == pytest.approx(2 * (1 - __import__("scipy").stats.t.cdf(tstat, 3)))
    assert d.excludes_zero


def test_no_interval_without_spread_or_pairs():
    d = stats.differences_ci([1.0, 1.0, 1.0])
    assert d.delta == 1.0 and math.isnan(d.lo) and math.isnan(d.p) and not d.excludes_zero
    # equal up to rounding: k/2500 scores give 25/2500 differences that differ in the last bits
    diffs = [625 / 2500 - 600 / 2500, 627 / 2500 - 602 / 2500, 625 / 2500 - 600 / 2500]
    assert diffs[0] != diffs[1]
    d = stats.differences_ci(diffs)
    assert d.delta == pytest.approx(0.01) and d.n == 3
    assert math.isnan(d.lo) and math.isnan(d.p) and not d.significant  # was p ~ 1e-30
    assert stats.differences_ci([0.01, 0.010001, 0.01]).lo < 0.01  # a real spread keeps its CI
    assert stats.differences_ci([2.0]).n == 1
    assert stats.paired_delta(pd.Series([1.0], index=[0]), pd.Series([1.0], index=[1])).n == 0


def test_bootstrap_below_ten_pairs_is_the_paired_t_interval():
    """A percentile bootstrap of 3 differences is [min, max] and excludes 0 for ~27% of null
    data; below BOOTSTRAP_MIN_N the interval is the paired t one, by hand."""
    diffs = [0.1, 0.2, 0.35]
    d = stats.differences_ci(diffs, bootstrap=True)
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / 2)
    half = 4.302652729911275 * sd / math.sqrt(3)  # t(0.975, 2)
    assert d.method == "t" and (d.lo, d.hi) == (pytest.approx(mean - half),
                                                pytest.approx(mean + half))
    assert d.lo < 0 < d.hi and not d.significant  # [min, max] = [0.1, 0.35] would exclude 0
    rng = np.random.default_rng(123)  # null data: * about 5% of the time, not ~27%
    hits = sum(stats.differences_ci(rng.normal(0, 1, 3), bootstrap=True).significant
               for _ in range(400))
    assert hits / 400 < 0.09


def test_bootstrap_from_ten_pairs_is_bca_and_the_star_follows_the_t_test():
    from scipy import stats as sst

    diffs = [0.15, -0.12, 0.13, 0.0, 0.1, 0.07, -0.02, -0.03, -0.02, 0.56]  # one large outlier
    d = stats.differences_ci(diffs, bootstrap=True)
    ref = sst.bootstrap((np.array(diffs),), np.mean, method="BCa", n_resamples=9999,
                        random_state=np.random.default_rng(0)).confidence_interval
    assert d.method == "bca" and (d.lo, d.hi) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert d.p == pytest.approx(sst.ttest_1samp(diffs, 0).pvalue)
    # the BCa interval excludes 0 but the sign-flip test does not reject: no *
    assert d.excludes_zero and d.p > 0.05 and d.p_perm > 0.05 and not d.significant
    assert "*" not in views.delta_text(d)


def test_holm_by_hand():
    p = [0.01, 0.04, float("nan"), 0.03, 0.20]
    # sorted: 0.01*4=0.04, 0.03*3=0.09, 0.04*2=0.08 -> max(0.09, 0.08)=0.09, 0.20*1=0.20
    expected = [0.04, 0.09, float("nan"), 0.09, 0.20]
    np.testing.assert_allclose(stats.holm(p), expected)
    np.testing.assert_allclose(stats.holm([0.5, 0.6]), [1.0, 1.0])


def _add_one(df):
    pool = df[(df.grid == "synth") & (df.dataset == "ring8")]
    part = pool[pool.design == "add-one"]
    return views.delta_table("t", "t", part, pool, df.attrs["metrics"],
                             ["modes", "high_quality", "reverse_kl"],
                             reference=views.baseline_of)


def test_add_one_delta_equals_hand_computation(df):
    t = _add_one(df)
    row = t.numbers.set_index("variant").loc["spectral_norm"]
    diffs = [high_quality(("spectral_norm",), s) - high_quality((), s) for s in SEEDS]
    hand = stats.differences_ci(diffs)
    assert row["d_high_quality"] == pytest.approx(np.mean(diffs))
    assert (row["d_high_quality_lo"], row["d_high_quality_hi"]) == (
        pytest.approx(hand.lo), pytest.approx(hand.hi))
    # the test: the exact sign-flip p (all 5 differences positive: 2 / 2**5, the floor)
    assert row["d_high_quality_p_perm"] == pytest.approx(stats.sign_flip_p(diffs)) == 0.0625
    assert row["d_high_quality_p_floor"] == 0.0625
    # Holm over every claim of the table (all rows x all headline metrics together), by hand
    cols = [f"d_{m}_p_perm" for m in ("modes", "high_quality", "reverse_kl")]
    flat = t.numbers[cols].to_numpy(float).ravel()
    hand_holm = stats.holm(flat).reshape(len(t.numbers), 3)
    np.testing.assert_allclose(t.numbers["d_high_quality_p_holm"], hand_holm[:, 1])
    np.testing.assert_allclose(t.numbers["d_modes_p_holm"], hand_holm[:, 0])
    assert t.notes[0].startswith("**Test:** exact paired sign-flip") and "5 paired" in t.notes[0]
    assert "no claim can reach p < 0.05" in t.notes[0]


def test_real_effect_flagged_null_not_and_best_is_true_best(df):
    t = _add_one(df)
    n = t.numbers.set_index("variant")
    assert n.loc["spectral_norm", "d_high_quality_lo"] > 0  # real +0.20
    assert n.loc["label_flip", "d_high_quality_lo"] < 0 < n.loc["label_flip", "d_high_quality_hi"]
    assert n.loc["instance_noise", "d_high_quality_hi"] < 0  # real -0.10
    cells = {r[0].text: r for r in t.rows}
    hq_col = t.columns.index("high_quality ↑")
    bold = [name for name, r in cells.items() if r[hq_col].bold]
    assert bold == ["spectral_norm"]  # the true best mean
    kl_col = t.columns.index("reverse_kl ↓")  # lower is better
    assert [name for name, r in cells.items() if r[kl_col].bold] == ["spectral_norm"]
    delta_col = t.columns.index("Δ high_quality [95% CI]")
    # 5 seeds: the sign-flip test cannot go below p = 0.0625, so no * however large the effect
    assert "*" not in cells["spectral_norm"][delta_col].text
    assert n.loc["spectral_norm", "d_high_quality_p_perm"] == 0.0625
    assert n.loc["label_flip", "d_high_quality_p_perm"] > 0.1  # null: 0.1875 here
    status = t.columns.index("status")
    assert cells["dropout"][status].text == "diverged 1/5 (step 250)"
    assert cells["ttur"][status].text == "failed 1/5"
    assert cells["self_attention"][status].text.startswith("not-applicable: ")
    assert "d_loss_collapse" in cells["dropout"][-1].text
    assert n.loc["dropout", "n_done"] == 4 and n.loc["dropout", "d_high_quality_n"] == 4


def test_pairs_interaction_by_hand(df):
    pool = df[(df.grid == "synth") & (df.dataset == "ring8")]
    t = views.pairs_table("p", "p", pool[pool.design == "pairs"], pool, ["high_quality"])
    n = t.numbers.set_index("pair")
    a, b = "instance_noise", "spectral_norm"
    per_seed = [high_quality((a, b), s) - high_quality((a,), s) - high_quality((b,), s)
                + high_quality((), s) for s in SEEDS]
    assert n.loc[f"{a}+{b}", "i_high_quality"] == pytest.approx(np.mean(per_seed))
    assert n.loc[f"{a}+{b}", "i_high_quality_lo"] > 0  # the built-in +0.06 interaction
    lf = n.loc["label_flip+spectral_norm"]
    assert lf["i_high_quality_lo"] < 0 < lf["i_high_quality_hi"]  # no interaction
    assert n.loc["relativistic+wgan_gp", "status"].startswith("conflict")
    # Holm over every claim of the pairs table (Δ(a+b) and interaction together), by hand
    both = t.numbers[["d_high_quality_p_perm", "i_high_quality_p_perm"]].to_numpy(float)
    hand = stats.holm(both.ravel()).reshape(both.shape)
    np.testing.assert_allclose(t.numbers["i_high_quality_p_holm"], hand[:, 1])
    assert t.notes[0].startswith("**Test:** exact paired sign-flip")


def test_factorial_effects_equal_contrasts(df):
    part = df[(df.grid == "synth") & (df.design == "factorial")]
    t = views.factorial_table("f", "f", part, ["high_quality"], {})
    eff = t.numbers.set_index("effect")
    runs = part.drop_duplicates("cell_id")
    x = pd.DataFrame(list(runs.factors), index=runs.index)
    for f in FACTORS:  # balanced design: the LS effect is the high-minus-low contrast
        hand = runs.high_quality[x[f] == 1].mean() - runs.high_quality[x[f] == 0].mean()
        assert eff.loc[f, "high_quality_effect"] == pytest.approx(hand)
    assert eff.loc["instance_noise:spectral_norm", "high_quality_lo"] > 0


def test_fractional_design_names_aliases():
    # 2^(3-1) with C = AB: C is aliased with A:B, A with B:C, B with A:C
    f = pd.DataFrame({"A": [0, 1, 0, 1], "B": [0, 0, 1, 1]})
    f["C"] = ((2 * f.A - 1) * (2 * f.B - 1) + 1) // 2
    y = 1 + 2 * f.A + 0.5 * f.C
    res = stats.factorial_effects(f, y)
    assert res.table.loc["A", "effect"] == pytest.approx(2.0)
    assert res.aliased == {"A:B": "C", "A:C": "B", "B:C": "A"}
    assert "A:B" in res.table.loc["C", "aliases"]


def test_tuned_view_chooses_each_variants_best_lr(df):
    t = views.tuned_table("t", "t", df[df.grid == "synth-tune"], ["high_quality"])
    n = t.numbers.set_index("variant")
    assert n.loc["baseline", "best_lr"] == pytest.approx(1e-3)
    assert n.loc["spectral_norm", "best_lr"] == pytest.approx(5e-4)
    diffs = [high_quality(("spectral_norm",), s, 5e-4) - high_quality((), s, 1e-3) for s in (0, 1, 2)]
    assert n.loc["spectral_norm", "d_high_quality"] == pytest.approx(np.mean(diffs))
    assert "same seeds" in t.notes[1] and t.notes[0].startswith("**Test:**")
    # the common-LR view beside it: every variant at the baseline's best LR (1e-3)
    assert n.loc["spectral_norm", "common_lr"] == pytest.approx(1e-3)
    common = [high_quality(("spectral_norm",), s, 1e-3) - high_quality((), s, 1e-3) for s in (0, 1, 2)]
    assert n.loc["spectral_norm", "common_d_high_quality"] == pytest.approx(np.mean(common))
    at_base = views.tuned_table("t", "t", df[df.grid == "synth-tune"], ["high_quality"],
                                base_lr=5e-4).numbers.set_index("variant")
    assert at_base.loc["spectral_norm", "common_lr"] == pytest.approx(5e-4)


def test_run_lost_to_a_conflict_leaves_an_effect_unestimable():
    f = pd.DataFrame({"A": [0, 1, 0, 1], "B": [0, 0, 1, 1]})
    y = [1.0, 3.0, 2.0, float("nan")]  # the (A, B) run was a conflict: no score
    res = stats.factorial_effects(f, y)
    assert res.unestimable == ["A:B"] and res.dof == 0
    assert res.table.loc["A", "effect"] == pytest.approx(2.0)  # 3 - 1 with B at its low level
    assert math.isnan(res.table.loc["A", "se"])  # no residual degrees of freedom left


def test_bootstrap_option_reaches_the_table(df):
    pool = df[(df.grid == "synth") & (df.dataset == "ring8")]
    part = pool[pool.design == "add-one"]
    t = views.delta_table("t", "t", part, pool, df.attrs["metrics"], ["high_quality"],
                          reference=views.baseline_of, bootstrap=True)
    row = t.numbers.set_index("variant").loc["spectral_norm"]
    diffs = [high_quality(("spectral_norm",), s) - high_quality((), s) for s in SEEDS]
    assert row["d_high_quality"] == pytest.approx(np.mean(diffs))
    # 5 seeds: below BOOTSTRAP_MIN_N, so the paired t interval, and the CSV says which
    hand = stats.differences_ci(diffs)
    assert (row["d_high_quality_lo"], row["d_high_quality_hi"]) == (pytest.approx(hand.lo),
                                                                    pytest.approx(hand.hi))
    assert row["d_high_quality_ci"] == "t"
    assert "BCa bootstrap" in t.notes[1] and "where n ≥ 10 paired seeds, paired t otherwise" \
        in t.notes[1] and "exact paired sign-flip test p < 0.05" in t.notes[1]
