"""Lazy regularisation as StyleGAN2 does it: the regulariser is its own optimizer step every
`interval` steps on its own minibatch, its loss multiplied by the interval, and the regularised
net's Adam lr and betas corrected by c = interval / (interval + 1) for the whole run."""
import pytest
import torch

from bench.trickapi.trick import TrickError
from tests.test_trainer import _interrupted_vs_straight
from tests.tiny import tiny_trainer, weights
from tricks import create_trick


def _count_steps(opt):
    calls = []
    original = opt.step

    def step(*a, **kw):
        calls.append(1)
        return original(*a, **kw)

    opt.step = step
    return calls


@pytest.mark.parametrize("trick,net,term", [
    (("gradient_penalty", {"interval": 3}), "d", "d_r1"),
    (("path_length", {"interval": 3}), "g", "g_pl"),
])
def test_regulariser_is_a_separate_update_exactly_every_interval_steps(trick, net, term):
    t = tiny_trainer("digits" if net == "g" else "ring8", [trick], steps=7, batch_size=8)
    opt = t.d_opt if net == "d" else t.g_opt
    calls, per_step = _count_steps(opt), []
    for _ in range(7):
        before = len(calls)
        t.train_step()
        per_step.append(len(calls) - before)
    # one main update per step, plus the regulariser's own at steps 0, 3 and 6
    assert per_step == [2, 1, 1, 2, 1, 1, 2]
    assert [s for s, _ in t.curves[term]] == [1, 4, 7]  # logged at those steps (step + 1)
    assert set(t.curves) == {"d_adv", "g_adv", term}


def test_lazy_update_loss_is_the_term_times_the_interval_on_its_own_minibatch():
    t = tiny_trainer("ring8", [("gradient_penalty", {"interval": 4})], steps=1, batch_size=8)
    D0 = {k: v.clone() for k, v in weights(t.nets.D).items()}
    pos = t.stream.state_dict()["pos"]
    losses = []
    original = t._update

    def spy(opt, loss, terms):
        losses.append((float(loss.detach()), {k: float(v.detach()) for k, v in terms.items()}))
        return original(opt, loss, terms)

    t._update = spy
    t.train_step()
    (_, d_terms), (lazy_loss, lazy_terms), _ = losses
    assert set(d_terms) == {"d_adv"}  # nothing in the main D loss
    assert set(lazy_terms) == {"d_r1"} and lazy_loss == pytest.approx(4 * lazy_terms["d_r1"])
    # its own real batch: the stream moved by two batches in this step (main + regulariser)
    assert t.stream.state_dict()["pos"] == pos + 16
    assert any(not torch.equal(v, D0[k]) for k, v in weights(t.nets.D).items())


def test_adam_of_the_regularised_net_is_corrected_for_the_whole_run():
    t = tiny_trainer("ring8", [("gradient_penalty", {"interval": 16})], lr=2e-4)
    c = 16 / 17
    assert t.d_spec.lr == pytest.approx(2e-4 * c)
    assert t.d_spec.beta1 == pytest.approx(0.5 ** c) and t.d_spec.beta2 == pytest.approx(0.999 ** c)
    assert t.d_opt.param_groups[0]["betas"] == (pytest.approx(0.5 ** c), pytest.approx(0.999 ** c))
    assert (t.g_spec.lr, t.g_spec.beta1) == (2e-4, 0.5)  # G untouched
    t.train_step()
    assert t.d_opt.param_groups[0]["lr"] == pytest.approx(2e-4 * c)  # lr_scale keeps it
    rec = t.make_record("done")
    assert rec.optim["D"]["lr"] == pytest.approx(2e-4 * c)
    eager = tiny_trainer("ring8", [("gradient_penalty", {"interval": 1})], lr=2e-4)
    assert (eager.d_spec.lr, eager.d_spec.beta1) == (2e-4, 0.5)  # not lazy: no correction
    pl = tiny_trainer("digits", ["path_length"], lr=2e-4)  # default interval 4: G corrected
    assert pl.g_spec.lr == pytest.approx(2e-4 * 4 / 5) and pl.d_spec.lr == 2e-4


def test_eager_interval_one_adds_the_penalty_into_every_main_update():
    t = tiny_trainer("ring8", [("gradient_penalty", {"interval": 1})], steps=3, batch_size=8)
    calls = _count_steps(t.d_opt)
    t.train()
    assert len(calls) == 3 and [s for s, _ in t.curves["d_r1"]] == [1, 2, 3]


def test_tricks_lazy_on_one_net_must_agree_on_the_interval():
    from bench.trickapi.trickset import TrickSet

    a = create_trick("gradient_penalty", interval=4)
    b = create_trick("gradient_penalty", interval=8)
    object.__setattr__(b, "name", "other")  # a second lazy D regulariser
    with pytest.raises(TrickError, match="every 4 and 8 steps"):
        TrickSet([a, b]).lazy_interval("D")


def test_resume_is_exact_with_lazy_regularisers(tmp_path):
    straight, resumed = _interrupted_vs_straight(
        "digits", [("gradient_penalty", {"interval": 2}), ("path_length", {"interval": 2})],
        tmp_path)
    for net in ("G", "D"):
        a, b = weights(getattr(straight.nets, net)), weights(getattr(resumed.nets, net))
        assert all(torch.equal(a[k], b[k]) for k in a), net
    assert straight.curves == resumed.curves and "g_pl" in straight.curves


def test_path_length_2d_setting_sets_the_calibrated_weight_and_keeps_old_ids():
    """setting="2d" gives the weight chosen on tuning seeds for 2-D data where the weight is at
    StyleGAN2's image value; an explicit weight is kept; the default cell id is unchanged (the
    setting enters it only when set)."""
    from bench.schedule.grid import full_spec
    from bench.trickapi.registry import create_trick
    from tricks.path_length import IMAGE_WEIGHT, TWO_D_WEIGHT

    assert create_trick("path_length").p.weight == IMAGE_WEIGHT == 2.0
    assert create_trick("path_length", setting="2d").p.weight == TWO_D_WEIGHT == 0.02
    assert create_trick("path_length", setting="2d", weight=0.5).p.weight == 0.5
    assert "setting" not in dict(full_spec("path_length").params)
    assert dict(full_spec("path_length", {"setting": "2d"}).params)["weight"] == 0.02
    with pytest.raises(Exception):
        create_trick("path_length", setting="3d")


def test_path_length_calibration_grid_loads():
    from pathlib import Path

    from bench.schedule.grid import load_grid
    grid = load_grid(str(Path(__file__).resolve().parents[1] / "benchmarks" / "calibration"
                         / "path_length_2d.toml"))
    assert {c.seed for c in grid.cells} == {100, 101, 102}  # tuning seeds only
