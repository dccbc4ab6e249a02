"""A pre-registered primary metric per dataset (`primary` in a grid's [[data]] table): the verdict
and the design tables test only its Δs, Holm within each dataset over its tricks, and print the
other headline Δs as secondary; without it every headline Δ is a claim (the default). On 8 paired
seeds a true effect is found and a null one is not, in one synthetic store and over many draws."""
import math

import numpy as np
import pytest

from bench.core.record import Record
from bench.report import stats, study, views
from bench.schedule.grid import load_grid
from bench.store.results import load_records
from tests.synthetic_store import SyntheticStore, cell, noise

SEEDS8 = range(8)
TRICKS = ("spectral_norm", "label_flip", "instance_noise", "ttur", "dropout", "packing")
# reverse_kl (lower is better): spectral_norm truly helps (−0.5, sd 0.05 per seed); the rest 0
TRUE = {"spectral_norm": -0.5}
# modes move with every trick, so a family over both metrics would differ from the primary one
MODES = {"spectral_norm": 1.0, "label_flip": 0.5, "instance_noise": -0.5}


def _store(root, primary: dict | None, degenerate=()):
    s = SyntheticStore(root)
    members = []
    for data in ("ring8", "grid25"):
        for tricks in [(), *[(t,) for t in TRICKS]]:
            name = tricks[0] if tricks else "baseline"
            for seed in SEEDS8:
                c = cell(data, tricks, seed)
                rkl = 1.0 + 0.1 * seed + TRUE.get(name, 0.0) + noise(f"{data}/{name}", seed, 0.0,
                                                                     0.05)
                modes = 5.0 + MODES.get(name, 0.0) + (seed % 3)
                s.store.put(Record(
                    cell_id=c.cell_id, variant_id=c.variant_id, label=c.label,
                    config=c.to_dict(), status="done", step=500,
                    flags=[{"flag": "at_chance", "step": 500, "detail": "synthetic"}]
                    if name in degenerate else [],
                    metrics={"reverse_kl": rkl, "modes": modes, "high_quality": 0.3},
                    curves={}, protocol={"kind": "2d", "dataset": data, "num_generated": 2500,
                                         "num_modes": 8 if data == "ring8" else 25}))
                members.append(s.member("add-one", data, c, "variant" if tricks else "baseline"))
    spec = {"description": "primary", "designs": {"ring8": "add-one", "grid25": "add-one"}}
    if primary:
        spec["primary"] = primary
    s.store.put_grid("g", spec, members)
    s.store.close()
    df = load_records(root, memberships=True)
    return df, {"g": spec}


def test_the_grid_key_is_stored_per_dataset(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('design = "add-one"\ntricks = ["ttur"]\n[[data]]\nname = "ring8"\nsteps = 5\n'
                    'batch_size = 16\nprimary = "reverse_kl"\n[[data]]\nname = "grid25"\n'
                    'steps = 5\nbatch_size = 16\n')
    grid = load_grid(str(path))
    assert grid.spec["primary"] == {"ring8": "reverse_kl"}
    assert views.primary_of(grid.spec, "ring8") == "reverse_kl"
    assert views.primary_of(grid.spec, "grid25") is None


def test_with_a_primary_metric_the_holm_family_is_its_claims_per_dataset(tmp_path):
    df, specs = _store(tmp_path / "s", {"ring8": "reverse_kl", "grid25": "reverse_kl"})
    v = study.verdict_table(df, specs=specs)
    n = v.numbers
    for data in ("ring8", "grid25"):
        mine = n[n["data"] == data]
        assert set(mine["metric"]) == {"reverse_kl"} and len(mine) == len(TRICKS)
        # exactly Holm over this dataset's primary claims
        assert np.allclose(mine["p_holm"], stats.holm(mine["p_perm"]))
        sn = mine.set_index("trick").loc["spectral_norm"]
        assert sn["p_perm"] == pytest.approx(2 / 2 ** 8)  # every seed lower
        assert sn["verdict"] == "helps"
        others = mine[mine["trick"] != "spectral_norm"]
        assert (others["verdict"] == "no detectable effect").all()
    assert "pre-registered primary metric" in v.notes[0]
    # the design table: Holm over the rows' reverse_kl only; modes secondary, untested
    pool = df[df["data"] == "ring8"]
    t = views.delta_table("t", "t", pool, pool, df.attrs["metrics"], ["modes", "reverse_kl"],
                          reference=views.baseline_of, primary="reverse_kl")
    num = t.numbers
    assert num["d_modes_p_holm"].isna().all()
    tested = num["d_reverse_kl_p_perm"].notna()
    assert np.allclose(num.loc[tested, "d_reverse_kl_p_holm"],
                       stats.holm(num.loc[tested, "d_reverse_kl_p_perm"]))
    col = t.columns.index("Δ modes [95% CI] (secondary)")
    assert not any(r[col].text.endswith(" *") for r in t.rows)
    assert "Secondary" in t.notes[0] and "primary metric reverse_kl" in t.notes[0]


def test_without_a_primary_metric_every_claim_is_in_one_family(tmp_path):
    df, specs = _store(tmp_path / "s", None)
    n = study.verdict_table(df, specs=specs).numbers
    assert np.allclose(n["p_holm"], stats.holm(n["p_perm"]))  # both datasets together
    # 12 claims: 8 seeds cannot pass Holm's first step (2/256 x 12 > 0.05), and the table says so
    sn = n.set_index(["data", "trick"]).loc[("ring8", "spectral_norm")]
    assert sn["verdict"] == "no detectable effect"
    assert sn["reason"] == "8 seeds cannot reach p_H < 0.05 over 12 claims"
    pool = df[df["data"] == "ring8"]
    t = views.delta_table("t", "t", pool, pool, df.attrs["metrics"], ["modes", "reverse_kl"],
                          reference=views.baseline_of)
    assert t.numbers["d_modes_p_holm"].notna().any()  # both metrics are claims


def test_rates_over_synthetic_draws_at_8_seeds_and_6_claims():
    """Family-wise: with every effect null, some claim is rejected in <= 5% of draws (Holm's
    guarantee; the exact test is conservative); an effect of 3 sd is found in >= 90%."""
    rng = np.random.default_rng(0)
    draws, false_any, found = 300, 0, 0
    for _ in range(draws):
        null = [stats.sign_flip_p(rng.normal(0, 1, 8)) for _ in range(6)]
        false_any += bool((stats.holm(null) < 0.05).any())
        mixed = [stats.sign_flip_p(rng.normal(3, 1, 8))] + null[1:]
        found += bool(stats.holm(mixed)[0] < 0.05)
    assert false_any / draws <= 0.05
    assert found / draws >= 0.9


def test_the_default_preset_can_decide():
    """cpu-default pre-registers a primary metric per dataset, and its evaluation seeds let a
    consistent effect pass Holm over each dataset's tricks (2 / 2^n < 0.05 / m); tuning and
    evaluation seeds are disjoint."""
    grid = load_grid("cpu-default")
    primary = grid.spec["primary"]
    assert set(primary) == {p.dataset for p in grid.plans} and set(primary.values()) <= {
        "reverse_kl", "fid"}
    for data in primary:
        plans = [p for p in grid.plans if p.dataset == data]
        tricks = [p for p in plans if p.label != "baseline"]
        seeds = set(plans[0].eval_seeds)
        assert not seeds & set(plans[0].tune_seeds)
        assert stats.sign_flip_floor(len(seeds)) < 0.05 / len(tricks)


def test_degenerate_rows_keep_their_seed_count_and_are_marked_in_the_aggregate(tmp_path):
    """A trick whose row and baseline are both degenerate: the verdict withholds its Δ but says
    how many paired seeds it has (not 0); the aggregate table marks it, and the baseline, †."""
    df, specs = _store(tmp_path / "s", {"ring8": "reverse_kl"},
                       degenerate=("baseline", "label_flip"))
    n = study.verdict_table(df, specs=specs).numbers.set_index(["data", "trick"])
    flip = n.loc[("ring8", "label_flip")]
    assert flip["verdict"] == "degenerate: no effect reported" and flip["n"] == 8
    assert math.isnan(flip["p_holm"])  # out of the family
    scores = study.aggregate_scores(df, specs)["g"]
    t = study.aggregate_table(df, "g", scores)
    marked = {r[0].text for r in t.rows if "†" in r[0].text}
    assert marked == {"baseline † (ring8, grid25)", "label_flip † (ring8, grid25)"}
    assert any("degenerate on those datasets" in note for note in t.notes)
