"""Aggregate statistics (IQM, stratified bootstrap, probability of improvement, performance
profiles), the sign-flip test, power and the budget-sensitivity mark, each against a hand
computation; the rates at which a true and a null effect are found over many synthetic draws."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst

from bench.report import aggregate, budget, power, stats


def test_iqm_by_hand_pools_every_run_of_every_task():
    # 8 runs pooled (ragged tasks): trim 2 from each end -> mean(3, 4, 5, 6)
    assert aggregate.iqm([[8, 1, 3], [2, 7, 4, 6, 5]]) == pytest.approx(4.5)
    # 5 runs: int(0.25 * 5) = 1 cut each end -> mean of the middle 3 (scipy's trim_mean)
    assert aggregate.iqm([[0, 8, 8, 1, 7]]) == pytest.approx((1 + 7 + 8) / 3)
    assert aggregate.iqm([[0, 8, 8, 1, 7]]) == pytest.approx(sst.trim_mean([0, 8, 8, 1, 7], 0.25))
    assert math.isnan(aggregate.iqm([[], [np.nan]]))


def test_stratified_bootstrap_interval_equals_a_hand_loop():
    tasks = [np.array([0.0, 1.0, 0.5, 0.9, 0.2]), np.array([0.3, 0.35, 0.8])]
    reps, seed = 500, 7
    est = aggregate.iqm_interval(tasks, reps=reps, seed=seed)
    rng = np.random.default_rng(seed)  # the same draws, one task after the other
    idx = [rng.integers(0, t.size, size=(reps, t.size)) for t in tasks]
    draws = [sst.trim_mean(np.concatenate([t[i[r]] for t, i in zip(tasks, idx)]), 0.25)
             for r in range(reps)]
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert (est.lo, est.hi) == (pytest.approx(lo), pytest.approx(hi))
    assert est.value == pytest.approx(aggregate.iqm(tasks)) and est.runs == 8 and est.tasks == 2
    # stratified: a resample never moves a run to another task, so a task whose runs are all
    # equal contributes exactly its value to every draw
    const = aggregate.iqm_interval([[0.5] * 4, [0.5] * 4], reps=100)
    assert const.lo == const.hi == 0.5


def test_probability_of_improvement_by_hand_and_against_mann_whitney():
    x, y = [1.0, 2.0, 3.0], [2.0, 2.0, 0.0]
    # pairs x > y: 1>0, 2>0, 3>2, 3>2, 3>0 = 5; ties 2=2 twice -> (5 + 2/2) / 9
    assert aggregate.probability_of_improvement([x], [y]) == pytest.approx(6 / 9)
    u = sst.mannwhitneyu(x, y, alternative="greater").statistic
    assert aggregate.probability_of_improvement([x], [y]) == pytest.approx(u / 9)
    # averaged over tasks; equal runs give 1/2 (rliable's convention)
    assert aggregate.probability_of_improvement([x, [1, 2]], [y, [1, 2]]) == pytest.approx(
        (6 / 9 + 0.5) / 2)
    est = aggregate.poi_interval([[5, 6, 7]], [[1, 2, 3]], reps=200)
    assert est.value == 1.0 and est.lo == est.hi == 1.0  # every resample: x beats y


def test_poi_interval_equals_a_hand_loop():
    x, y = [np.array([0.1, 0.4, 0.6, 0.8])], [np.array([0.2, 0.3, 0.5])]
    reps, seed = 300, 3
    est = aggregate.poi_interval(x, y, reps=reps, seed=seed)
    rng = np.random.default_rng(seed)
    xi = rng.integers(0, 4, size=(reps, 4))
    yi = rng.integers(0, 3, size=(reps, 3))
    draws = []
    for r in range(reps):
        xs, ys = x[0][xi[r]], y[0][yi[r]]
        draws.append(np.mean([(a > b) + 0.5 * (a == b) for a in xs for b in ys]))
    lo, hi = np.percentile(draws, [2.5, 97.5])
    assert (est.lo, est.hi) == (pytest.approx(lo), pytest.approx(hi))


def test_performance_profile_by_hand():
    prof, lo, hi = aggregate.performance_profile([[0.1, 0.5], [0.9]], [0.0, 0.5, 1.0], reps=50)
    np.testing.assert_allclose(prof, [1.0, 1 / 3, 0.0])  # > tau, not >=
    assert (lo <= prof + 1e-12).all() and (hi >= prof - 1e-12).all()


def _scores():
    rng = np.random.default_rng(0)
    return rng.integers(0, 9, size=(10, 3)) / 8, rng.integers(0, 9, size=(10, 3)) / 8


def test_point_estimates_equal_rliables():
    """rliable (pinned in the test extra) defines IQM and the probability of improvement; its
    `metrics` module needs only numpy and scipy."""
    metrics = pytest.importorskip("rliable.metrics")
    scores, base = _scores()  # 10 runs x 3 tasks, mode-count-like ties
    tasks, btasks = list(scores.T), list(base.T)
    assert aggregate.iqm(tasks) == pytest.approx(metrics.aggregate_iqm(scores))
    assert aggregate.probability_of_improvement(tasks, btasks) == pytest.approx(
        metrics.probability_of_improvement(scores, base))
    assert aggregate.probability_of_improvement(btasks, tasks) == pytest.approx(
        metrics.probability_of_improvement(base, scores))


def test_intervals_close_to_rliables_where_its_library_imports():
    """rliable's `library` (the stratified bootstrap) needs arch < 8, whose releases do not
    import with pandas 3; where it does import, the intervals agree up to resampling noise."""
    try:
        from rliable import library as rly, metrics
    except Exception as e:  # ImportError, or arch's TypeError under pandas 3
        pytest.skip(f"rliable.library does not import here: {type(e).__name__}")
    scores, _ = _scores()
    _, ci = rly.get_interval_estimates({"a": scores}, lambda s: np.array(
        [metrics.aggregate_iqm(s)]), reps=5000)
    mine = aggregate.iqm_interval(list(scores.T), reps=5000)
    assert mine.lo == pytest.approx(ci["a"][0][0], abs=0.04)
    assert mine.hi == pytest.approx(ci["a"][1][0], abs=0.04)


# -- the test the tables use -----------------------------------------------------------------
def test_sign_flip_by_hand_and_its_floor():
    # d = (1, 2, -0.5), observed |mean| = 2.5/3; patterns with |±1 ±2 ±0.5| >= 2.5:
    # (+,+,+) 3.5, (+,+,-) 2.5, (-,-,+) 2.5, (-,-,-) 3.5 -> 4 of 8
    assert stats.sign_flip_p([1.0, 2.0, -0.5]) == pytest.approx(0.5)
    assert stats.sign_flip_floor(3) == 0.25 and stats.sign_flip_floor(5) == 0.0625
    # a zero-spread row is tested, not dropped: -8 modes on every seed
    d = stats.differences_ci([-8.0, -8.0, -8.0])
    assert math.isnan(d.lo) and math.isnan(d.p)  # no t interval, no t p
    assert d.p_perm == 0.25 == d.p_floor  # the smallest p 3 seeds allow
    assert stats.sign_flip_p([0.0, 0.0, 0.0]) == 1.0
    # Monte Carlo above EXACT_MAX_N: close to the exact normal-theory scale, never 0
    p = stats.sign_flip_p(np.r_[np.ones(20), -np.ones(2)])
    assert 0 < p < 0.01


def test_a_true_effect_is_found_and_a_null_is_not_at_the_stated_rate():
    """Over many synthetic draws at 8 paired seeds: a null on bounded, bimodal mode counts
    (each seed 0 or 8 modes for both arms) is rejected at most 5% of the time (exact test);
    a 1-sd effect on continuous scores is found most of the time."""
    rng = np.random.default_rng(0)
    draws = 400
    null_hits = 0
    for _ in range(draws):
        a = 8.0 * (rng.random(8) < 0.5)
        b = 8.0 * (rng.random(8) < 0.5)
        null_hits += stats.differences_ci(a - b).significant
    assert null_hits / draws <= 0.05
    true_hits = sum(stats.differences_ci(rng.normal(1.2, 1.0, 8)).significant
                    for _ in range(draws))
    assert true_hits / draws > 0.7


def test_holm_over_all_claims_of_a_table():
    frame = pd.DataFrame({"a": [0.01, 0.04], "b": [0.03, np.nan]})
    adj = stats.holm_columns(frame, ["a", "b"])
    # one family of 3: 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 -> max(0.06, 0.04) = 0.06
    np.testing.assert_allclose(adj["a"], [0.03, 0.06])
    np.testing.assert_allclose(adj["b"], [0.06, np.nan])


# -- power ------------------------------------------------------------------------------------
def test_power_by_hand_and_by_simulation():
    # one-sample / paired t, n = 10, effect = 1 sd: power 0.803 (noncentral t, two-sided 0.05)
    assert power.t_power(10, 1.0, 1.0) == pytest.approx(0.8031, abs=2e-3)
    mde = power.detectable(8, 2.0)
    assert power.t_power(8, mde, 2.0) == pytest.approx(0.8, abs=1e-6)
    rng = np.random.default_rng(1)
    hits = np.mean([sst.ttest_1samp(rng.normal(mde, 2.0, 8), 0).pvalue < 0.05
                    for _ in range(3000)])
    assert hits == pytest.approx(0.8, abs=0.03)
    assert power.MIN_SEEDS == 6  # 2 / 2**6 = 0.031 < 0.05 <= 2 / 2**5
    assert power.seeds_needed(1.0, 0.5) == 6  # a big effect still needs the test's minimum
    n = power.seeds_needed(1.0, 2.0)
    assert power.t_power(n, 1.0, 2.0) >= 0.8 > power.t_power(n - 1, 1.0, 2.0)
    assert power.pooled_sd([1.0, 2.0], [3, 5]) == pytest.approx(math.sqrt((2 * 1 + 4 * 4) / 6))


def test_table_power_reads_a_delta_tables_numbers():
    numbers = pd.DataFrame({"d_modes_sd": [1.0, 3.0, np.nan], "d_modes_n": [5, 5, 0]})
    pw = power.table_power(numbers, "modes")
    assert pw["n"] == 5 and pw["sd_diff"] == pytest.approx(math.sqrt(5.0))
    assert pw["floor"] == 0.0625
    assert pw["detectable"] == pytest.approx(power.detectable(5, math.sqrt(5.0)))
    assert pw["seeds_1"] == power.seeds_needed(1.0, math.sqrt(5.0))


# -- budget sensitivity -----------------------------------------------------------------------
def _rows(values_half, values_full, steps=500):
    return pd.DataFrame([{"status": "done", "seed": s, "steps": steps, "modes": full,
                          "curves": {"eval_modes": [[100, 0.0], [250, half], [500, full]]}}
                         for s, (half, full) in enumerate(zip(values_half, values_full))])


def test_fragile_when_the_sign_flips_at_half_budget():
    seeds = 6
    base = _rows([4.0] * seeds, [4.0] * seeds)
    # ahead at half the budget, behind at the end: every seed
    flip = _rows([6.0, 6.5, 5.5, 6.0, 7.0, 6.2], [3.0, 2.5, 3.5, 3.2, 2.0, 3.1])
    full = stats.paired_delta(pd.Series(flip["modes"].to_numpy(), index=flip["seed"]),
                              pd.Series(base["modes"].to_numpy(), index=base["seed"]))
    sens = budget.sensitivity(full, flip, base, "modes")
    assert sens.half.delta == pytest.approx(np.mean([6.0, 6.5, 5.5, 6.0, 7.0, 6.2]) - 4.0)
    assert full.delta < 0 < sens.half.delta and sens.fragile
    steady = _rows([5.0, 5.5, 5.2, 5.1, 5.3, 5.4], [6.0, 6.5, 6.1, 6.2, 6.3, 6.4])
    full = stats.paired_delta(pd.Series(steady["modes"].to_numpy(), index=steady["seed"]),
                              pd.Series(base["modes"].to_numpy(), index=base["seed"]))
    assert not budget.sensitivity(full, steady, base, "modes").fragile
    # an effect at full budget, none at half (mixed signs there): fragile too
    mixed = _rows([5.0, 3.0, 4.5, 3.5, 4.2, 3.9], [6.0, 6.5, 6.1, 6.2, 6.3, 6.4])
    assert budget.sensitivity(full, mixed, base, "modes").fragile
    # a point estimate that flips sign while neither budget shows an effect: no conclusion
    noise = _rows([4.5, 3.0, 4.5, 3.8, 4.5, 4.0], [3.6, 4.6, 3.5, 4.2, 3.8, 4.1])
    nfull = stats.paired_delta(pd.Series(noise["modes"].to_numpy(), index=noise["seed"]),
                               pd.Series(base["modes"].to_numpy(), index=base["seed"]))
    sens = budget.sensitivity(nfull, noise, base, "modes")
    assert sens.half.delta * nfull.delta < 0 and not sens.fragile
    # the half point is the last logged step <= half the cell's own steps
    assert budget.half_value({"steps": 600, "curves": {"eval_modes": [[200, 1], [300, 2],
                                                                       [400, 3]]}},
                             "modes") == 2
    assert math.isnan(budget.half_value({"steps": 600, "curves": {}}, "modes"))


def test_power_from_the_committed_records_and_bad_input(tmp_path, capsys):
    """`python -m bench.report.power`: what the presets' seed comments quote; a bad input is
    one line on stderr and exit 2."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    assert power.main([str(root / "results" / "paper-2d-glr1e-3" / "records.jsonl")]) == 0
    out = capsys.readouterr().out
    assert "ring8 25000 steps" in out and "seeds for 1 mode: 22" in out
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    for arg in (str(bad), str(tmp_path / "missing.jsonl"), str(tmp_path)):
        assert power.main([arg]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: cannot read records from")
