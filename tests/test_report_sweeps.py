"""Grids with sweep axes or `[tune] lr`: every comparison stays at its own sweep point, and rows
say which point they are."""
import dataclasses

import numpy as np
import pytest

from bench.core.config import TrickSpec
from bench.report import figures, stats, views
from bench.store.results import load_records
from tests.synthetic_store import FACTORS, SEEDS, VERSIONS, SyntheticStore, cell, high_quality

LRS = (1e-3, 5e-4)


def _steps_store(root):
    """baseline and spectral_norm at steps 500 / 1000 x lr 1e-3 / 5e-4 x seeds 0-2:
    hq = (0.3 at 500 steps, 0.8 at 1000) + 0.02 at the point's better lr (1e-3 at 500 steps,
    5e-4 at 1000) + 0.01 s, and spectral_norm + 0.05 + 0.003 s^2: Δ = 0.05 + mean(0.003 s^2)
    = 0.055 at each point, whatever the lr."""
    s = SyntheticStore(root)
    members = []
    for steps in (500, 1000):
        for lr in LRS:
            for tricks in ((), ("spectral_norm",)):
                for seed in range(3):
                    c = cell("ring8", tricks, seed, lr=lr)
                    c = c.replace(train=dataclasses.replace(c.train, steps=steps))
                    better = (lr == 1e-3) == (steps == 500)
                    hq = ((0.3 if steps == 500 else 0.8) + 0.02 * better + 0.01 * seed
                          + (0.05 + 0.003 * seed ** 2 if tricks else 0))
                    s.put(c, hq)
                    members.append(s.member("add-one", "ring8", c,
                                            "variant" if tricks else "baseline",
                                            sweep={"steps": steps}, tune={"lr": lr}))
    s.store.put_grid("g", {"designs": {"ring8": "add-one"}, "tune": {"lr": list(LRS)}},
                     members)
    s.store.close()
    return load_records(root, memberships=True)


def test_tuned_view_pairs_each_sweep_point_with_its_own_baseline(tmp_path):
    df = _steps_store(tmp_path)
    t = views.tuned_table("t", "t", df, ["high_quality"], base_lr=1e-3)
    n = t.numbers.set_index("variant")
    assert list(n.index) == ["baseline [steps=500]", "spectral_norm [steps=500]",
                             "baseline [steps=1000]", "spectral_norm [steps=1000]"]
    for steps, best in ((500, 1e-3), (1000, 5e-4)):
        row = n.loc[f"spectral_norm [steps={steps}]"]
        assert row["best_lr"] == best  # hq is highest there, so reverse_kl = 1 - hq lowest
        # was +0.555 at 1000 steps: paired with the 500-step baseline
        assert row["d_high_quality"] == pytest.approx(0.055)
        assert row["common_lr"] == 1e-3 and row["common_d_high_quality"] == pytest.approx(0.055)
    assert "Δ high_quality at lr 0.001" in t.columns and "common lr" not in t.columns


def test_without_the_base_lr_each_point_uses_its_baselines_best_lr(tmp_path):
    t = views.tuned_table("t", "t", _steps_store(tmp_path), ["high_quality"])
    n = t.numbers.set_index("variant")
    assert n.loc["spectral_norm [steps=500]", "common_lr"] == 1e-3
    assert n.loc["spectral_norm [steps=1000]", "common_lr"] == 5e-4
    assert n["common_d_high_quality"].dropna().tolist() == pytest.approx([0.055, 0.055])
    assert "common lr" in t.columns and "Δ high_quality at the common lr" in t.columns
    assert all(len(r) == len(t.columns) for r in t.rows)


def _interaction(pair, lr=1e-3, seeds=SEEDS):
    a, b = pair
    return [high_quality(pair, s, lr) - high_quality((a,), s, lr) - high_quality((b,), s, lr)
            + high_quality((), s, lr) for s in seeds]


def test_pair_singles_come_from_the_same_data_sweep_point(tmp_path):
    """Every cell of a grid with a steps axis has sweep {"steps": 500}, the singles too; they
    still count (they used to need an empty sweep, so every interaction was '–')."""
    s = SyntheticStore(tmp_path)
    members = []
    for design, tricks in ([("pairs", ())] + [("add-one", (t,)) for t in FACTORS]
                           + [("pairs", p) for p in (FACTORS[:2], FACTORS[::2])]):
        for seed in SEEDS:
            c = s.add("ring8", tricks, seed)
            members.append(s.member(design, "ring8", c, "variant" if tricks else "baseline",
                                    sweep={"steps": 500}))
    s.store.put_grid("g", {"designs": {"ring8": ["add-one", "pairs"]}}, members)
    s.store.close()
    df = load_records(tmp_path, memberships=True)
    t = views.pairs_table("p", "p", df[df.design == "pairs"], df, ["high_quality"])
    n = t.numbers.set_index("pair")
    row = n.loc["instance_noise+spectral_norm [steps=500]"]
    hand = _interaction(("instance_noise", "spectral_norm"))
    assert row["i_high_quality_n"] == 5 and row["i_high_quality"] == pytest.approx(np.mean(hand))
    assert row["i_high_quality_lo"] > 0 and row["point"] == "steps=500"  # the built-in +0.06


def test_pair_singles_match_the_pairs_own_trick_params(tmp_path):
    """instance_noise swept over std: each pair is compared with instance_noise alone at its
    own std. hq: baseline 0.30, label_flip 0.30, in(std) 0.30 - std, pair: 0.30 - std plus an
    interaction of 0 at std 0.1 and +0.1 at std 0.3 (+ 0.01 s everywhere)."""
    s = SyntheticStore(tmp_path)
    members = []
    v = {t: VERSIONS.get(t, 1) for t in ("instance_noise", "label_flip")}

    def add(design, specs, hq, sweep):
        for seed in SEEDS:
            c = cell("ring8", (), seed).replace(tricks=tuple(specs))
            s.put(c, hq + 0.01 * seed)
            members.append(s.member(design, "ring8", c, "variant" if specs else "baseline",
                                    sweep=sweep))
    lf = TrickSpec.of("label_flip", version=v["label_flip"])
    add("pairs", [], 0.30, {})
    add("add-one", [lf], 0.30, {})
    for std, inter in ((0.1, 0.0), (0.3, 0.1)):
        noise = TrickSpec.of("instance_noise", {"std": std}, version=v["instance_noise"])
        add("add-one", [noise], 0.30 - std, {"instance_noise.std": std})
        add("pairs", [noise, lf], 0.30 - std + inter, {"instance_noise.std": std})
    s.store.put_grid("g", {"designs": {"ring8": ["add-one", "pairs"]}}, members)
    s.store.close()
    df = load_records(tmp_path, memberships=True)
    n = views.pairs_table("p", "p", df[df.design == "pairs"], df, ["high_quality"]).numbers
    n = n.set_index("pair")
    at = "instance_noise+label_flip [instance_noise.std={}]"
    assert n.loc[at.format(0.1), "i_high_quality"] == pytest.approx(0.0)
    assert n.loc[at.format(0.3), "i_high_quality"] == pytest.approx(0.1)
    assert n.loc[at.format(0.3), "d_high_quality"] == pytest.approx(-0.2)


def _tuned_pairs(root):
    s = SyntheticStore(root)
    members = []
    pair = FACTORS[1:]  # label_flip + spectral_norm: spectral_norm gains at 5e-4, baseline loses
    for lr in LRS:
        for design, tricks in ([("pairs", ())] + [("add-one", (t,)) for t in pair]
                               + [("pairs", pair)]):
            for seed in SEEDS:
                c = s.add("ring8", tricks, seed, lr=lr)
                members.append(s.member(design, "ring8", c, "variant" if tricks else "baseline",
                                        tune={"lr": lr}))
    s.store.put_grid("g", {"designs": {"ring8": ["add-one", "pairs"]}, "tune": {"lr": list(LRS)}},
                     members)
    s.store.close()
    df = load_records(root, memberships=True)
    return views.pairs_table("p", "p", df[df.design == "pairs"], df, ["high_quality"]).numbers


def test_tuned_pairs_are_labelled_per_lr_and_paired_at_it(tmp_path):
    n = _tuned_pairs(tmp_path).set_index("pair")
    assert list(n.index) == ["label_flip+spectral_norm [lr=0.001]",
                             "label_flip+spectral_norm [lr=0.0005]"]
    for lr in LRS:
        row = n.loc[f"label_flip+spectral_norm [lr={lr:g}]"]
        assert row["point"] == f"lr={lr:g}"
        assert row["i_high_quality"] == pytest.approx(np.mean(_interaction(FACTORS[1:], lr)))
    # by construction ~0 at 1e-3 and ~-0.2 at 5e-4 (spectral_norm alone +0.1, baseline -0.1)
    assert n["i_high_quality"].tolist() == pytest.approx([0.0, -0.2], abs=0.03)


def test_interaction_heatmap_draws_each_lr_in_its_own_panel(tmp_path, monkeypatch):
    numbers = _tuned_pairs(tmp_path)
    drawn = {}
    # the figure as saved (figures.style.ON_SAVE: the hooks every figure module's save calls)
    monkeypatch.setattr(figures.style, "ON_SAVE", [lambda fig, stem: drawn.__setitem__("fig", fig)])
    monkeypatch.setattr(figures.style, "PDF", False)
    figures.interaction_heatmap(numbers, "high_quality", tmp_path / "h", "t")
    panels = [ax for ax in drawn["fig"].axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["lr=0.001", "lr=0.0005"]
    for ax, value in zip(panels, numbers["i_high_quality"]):  # was: only the last lr survived
        texts = {t.get_text() for t in ax.texts}
        assert f"{value:+.2g}" in {x.rstrip("*") for x in texts}


def test_stats_note_names_the_methods():
    assert "paired t" in views.ci_note(False) and "BCa" not in views.ci_note(False)
    assert f"n ≥ {stats.BOOTSTRAP_MIN_N}" in views.ci_note(True)
