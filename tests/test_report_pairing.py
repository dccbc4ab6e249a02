"""A variant's Δ is against the baseline of its whole setup (the config but tricks, seed and
bookkeeping), and rows of different setups in one table have different labels."""
import dataclasses

import pytest

from bench.core.config import HARNESS_VERSION, NetConfig, OptimConfig
from bench.core import setups
from bench.report import views
from bench.store.results import load_records
from tests.synthetic_store import VERSIONS, SyntheticStore, cell

SEEDS = (0, 1, 2)
# hand values: the right baseline 0.30 + 0.01 s, spectral_norm 0.35 + 0.012 s, so
# Δ = mean(0.05 + 0.002 s) = +0.052; a decoy baseline of another setup is at 0.90
RIGHT_DELTA = 0.052


def _with(c, **change):
    """The cell with `net.*` / `train.*` / `both.*` (both optimizers) fields changed."""
    net, train = dict(), dict()
    for key, v in change.items():
        where, name = key.split("__")
        if where == "net":
            net[name] = v
        elif where == "train":
            train[name] = v
        else:  # both optimizers
            for opt in ("g_optim", "d_optim"):
                train[opt] = dataclasses.replace(train.get(opt, getattr(c.train, opt)), **{name: v})
    return c.replace(net=dataclasses.replace(c.net, **net),
                     train=dataclasses.replace(c.train, **train))


def _table(root):
    df = load_records(root, memberships=True)
    t = views.delta_table("t", "t", df, df, df.attrs["metrics"], ["high_quality"],
                          reference=views.baseline_of)
    return t.numbers


def _store(tmp_path, decoy_change, variant_change=None, *, decoy_config=None):
    """Decoy baseline (another setup, stored first), the right baseline, spectral_norm."""
    s = SyntheticStore(tmp_path)
    for seed in SEEDS:
        base = cell("ring8", (), seed)
        decoy = _with(base, **decoy_change)
        s.put(decoy, 0.90, created=seed, config=decoy_config(decoy) if decoy_config else None)
    for seed in SEEDS:
        base, sn = cell("ring8", (), seed), cell("ring8", ("spectral_norm",), seed)
        if variant_change:
            base, sn = _with(base, **variant_change), _with(sn, **variant_change)
        s.put(base, 0.30 + 0.01 * seed, created=10 + seed)
        s.put(sn, 0.35 + 0.012 * seed, created=20 + seed)
    s.store.close()
    return _table(tmp_path)


@pytest.mark.parametrize("change, decoy, right", [
    ({"net__width": 64}, "width=64", ""), ({"net__z_dim": 8}, "z_dim=8", ""),
    ({"net__depth": 2}, "depth=2", ""), ({"net__activation": "tanh"}, "activation=tanh", ""),
    ({"net__init": "orthogonal"}, "init=orthogonal", ""), ({"both__beta1": 0.0}, "beta1=0", ""),
    ({"both__beta2": 0.9}, "beta2=0.9", ""), ({"train__stop_on": "hard"}, "stop_on=hard", ""),
    ({"train__g_loss": "minimax"}, "g_loss=minimax", ""),
    ({"both__lr": 5e-4}, "lr=0.0005", "lr=0.001"),
    ({"train__d_optim": OptimConfig(lr=1e-4)}, "d_lr=0.0001", "d_lr=0.001"),
    ({"train__batch_size": 32}, "batch_size=32", ""),
    # 500 steps is not the harness default (2000): both steps are named
    ({"train__steps": 900}, "steps=900", "steps=500")])
def test_a_baseline_of_another_setup_is_never_the_reference(tmp_path, change, decoy, right):
    n = _store(tmp_path, change)
    tag = f" [{right}]" if right else ""
    assert list(n["variant"]) == [f"baseline [{decoy}]", f"baseline{tag}", f"spectral_norm{tag}"]
    sn = n.set_index("variant").loc[f"spectral_norm{tag}"]
    assert sn["d_high_quality"] == pytest.approx(RIGHT_DELTA) and sn["d_high_quality_n"] == 3


def test_a_variant_of_a_custom_setup_pairs_with_that_setups_baseline(tmp_path):
    # the variant and its baseline at width 64, the decoy at the default width (stored first)
    n = _store(tmp_path, {}, {"net__width": 64}).set_index("variant")
    assert n.loc["spectral_norm [width=64]", "d_high_quality"] == pytest.approx(RIGHT_DELTA)
    assert {"baseline", "baseline [width=64]"} <= set(n.index)


def test_another_harness_version_is_another_setup(tmp_path):
    n = _store(tmp_path, {}, decoy_config=lambda c: {**c.to_dict(),
                                                       "harness_version": HARNESS_VERSION + 1})
    assert list(n["variant"]) == [f"baseline [harness_version={HARNESS_VERSION + 1}]",
                                  "baseline", "spectral_norm"]
    assert n.set_index("variant").loc["spectral_norm", "d_high_quality"] == pytest.approx(
        RIGHT_DELTA)


def test_bookkeeping_does_not_split_a_setup_but_picks_the_twin_that_shares_it(tmp_path):
    """A baseline that differs only in log_every / checkpoint_every is the same setup. Of two
    such twins the variant pairs with the one whose bookkeeping it shares, never a mix."""
    s = SyntheticStore(tmp_path)
    for seed in SEEDS:
        base = cell("ring8", (), seed)
        s.put(_with(base, train__log_every=10, train__checkpoint_every=0), 0.60 + 0.01 * seed,
              created=seed)  # the twin stored first
        s.put(base, 0.30 + 0.01 * seed, created=10 + seed)
        s.put(cell("ring8", ("spectral_norm",), seed), 0.35 + 0.012 * seed, created=20 + seed)
    s.store.close()
    df = load_records(tmp_path, memberships=True)
    assert df["setup_id"].nunique() == 1  # one setup: the twins differ in bookkeeping only
    n = _table(tmp_path).set_index("variant")
    assert n.loc["spectral_norm", "d_high_quality"] == pytest.approx(RIGHT_DELTA)
    # alone, the twin is the baseline: Δ = mean(0.35 + 0.012 s - 0.60 - 0.01 s) = -0.248
    t2 = tmp_path / "alone"
    s = SyntheticStore(t2)
    for seed in SEEDS:
        s.put(_with(cell("ring8", (), seed), train__log_every=10), 0.60 + 0.01 * seed)
        s.put(cell("ring8", ("spectral_norm",), seed), 0.35 + 0.012 * seed)
    s.store.close()
    alone = _table(t2).set_index("variant")
    assert alone.loc["spectral_norm", "d_high_quality"] == pytest.approx(-0.248)


def test_log_every_is_setup_when_hard_flags_stop_runs(tmp_path):
    # under stop_on = "hard" the log points decide when a run ends: log_every 10 vs 50 (default)
    n = _store(tmp_path, {"train__stop_on": "hard", "train__log_every": 10},
               {"train__stop_on": "hard"})
    assert list(n["variant"]) == ["baseline [log_every=10]", "baseline", "spectral_norm"]
    assert n.set_index("variant").loc["spectral_norm", "d_high_quality"] == pytest.approx(
        RIGHT_DELTA)


def test_setup_of_fills_defaults_and_drops_tricks_seed_and_bookkeeping():
    c = cell("ring8", ("spectral_norm",), 3)
    s = setups.setup_of(c.to_dict())
    assert "seed" not in s and not any(k.startswith("tricks") for k in s)
    assert "train.log_every" not in s and "train.checkpoint_every" not in s
    assert s["net.width"] is None and s["net.activation"] == "default"  # pruned, filled in
    assert s["train.d_optim.beta1"] == 0.5 and s["harness_version"] == HARNESS_VERSION
    spelled = {**c.to_dict(), "net": {**c.to_dict()["net"], "activation": "default"}}
    assert setups.setup_of(spelled) == s  # an optional field spelled out at its default
    hard = _with(c, train__stop_on="hard").to_dict()
    assert setups.setup_of(hard)["train.log_every"] == 50
    assert setups.setup_id(s) == setups.setup_id(setups.setup_of(cell("ring8", (), 0).to_dict()))
    assert setups.setup_id(s, without=setups.LR_KEYS) == setups.setup_id(
        setups.setup_of(cell("ring8", (), 0, lr=5e-4).to_dict()), without=setups.LR_KEYS)


def test_within_a_grid_labels_stay_as_they_were(tmp_path):
    """One grid's rows share a setup but for their sweep values: no extra label text."""
    s = SyntheticStore(tmp_path)
    members = []
    for seed in SEEDS:
        for t in ((), ("spectral_norm",)):
            c = s.put(cell("ring8", t, seed), 0.3 + 0.01 * seed + (0.05 if t else 0))
            members.append(s.member("add-one", "ring8", c, "variant" if t else "baseline"))
    s.store.put_grid("g", {"designs": {"ring8": "add-one"}}, members)
    s.store.close()
    assert list(_table(tmp_path)["variant"]) == ["baseline", "spectral_norm"]


def test_net_config_default_width_is_not_named():
    # a setting at its harness default is left out of a label; the other row names its value
    a = setups.setup_of(cell("ring8", (), 0).to_dict())
    b = setups.setup_of(cell("ring8", (), 0).replace(net=NetConfig(width=64)).to_dict())
    assert setups.suffixes([a, b], [[], []]) == ["", "width=64"]
    c = setups.setup_of(cell("ring8", (), 0, lr=5e-4).to_dict())  # a: 1e-3, default 2e-4
    assert setups.suffixes([a, c], [[], []]) == ["lr=0.001", "lr=0.0005"]
    assert setups.suffixes([a, c], [["lr"], ["lr"]]) == ["", ""]  # the sweep label shows it


def test_rows_of_one_setup_that_share_a_label_name_what_differs(tmp_path):
    """Two `ganbench train` runs of one trick with other params, and a baseline twin with
    another log_every: same setup, so the labels name the params / bookkeeping instead."""
    from bench.core.config import TrickSpec

    s = SyntheticStore(tmp_path)
    for seed in SEEDS:
        base = cell("ring8", (), seed)
        s.put(base, 0.3)
        s.put(_with(base, train__log_every=10), 0.3)
        for std in (0.1, 0.3):
            noise = TrickSpec.of("instance_noise", {"std": std},
                                 version=VERSIONS.get("instance_noise", 1))
            s.put(base.replace(tricks=(noise,)), 0.3)
    s.store.close()
    assert sorted(_table(tmp_path)["variant"]) == [
        "baseline [log_every=10]", "baseline [log_every=50]",
        "instance_noise [instance_noise.std=0.1]", "instance_noise [instance_noise.std=0.3]"]
