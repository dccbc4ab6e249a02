"""packing (PacGAN, tricks/packing.py): D's input shape, the m draws, m = 1 = the baseline,
gradients to every packed sample, conflicts as data, bad params."""
import pytest
import torch

from bench.core.chance import KEEPS_D_LOSS
from bench.schedule.step_costs import RATIO
from bench.trickapi.registry import conflict_reasons, create_trick, list_tricks
from tests.tiny import tiny_trainer, weights
from tricks.packing import COMBINES, Pack


def _d_inputs(trainer):
    """Shapes D's first layer (inside Pack) and D itself receive, recorded by forward hooks."""
    seen = {"D": [], "layer": []}
    D = trainer.nets.D
    D.register_forward_pre_hook(lambda m, a: seen["D"].append(tuple(a[0].shape)))
    layer = D.blocks[0].main
    inner = layer.layer if isinstance(layer, Pack) else layer
    inner.register_forward_pre_hook(lambda m, a: seen["layer"].append(tuple(a[0].shape)))
    return seen


@pytest.mark.parametrize("m", [2, 3, 4])
def test_d_sees_batch_inputs_of_m_samples_each(m):
    tr = tiny_trainer("ring8", (("packing", {"m": m}),), steps=2, batch_size=16)
    seen = _d_inputs(tr)
    tr.train()
    assert tr.draws == 16 * m and tr.stream.batch_size == 16 * m
    # D gets the m x B drawn samples; its first layer sees B packed inputs of m*d features
    assert set(seen["D"]) == {(16 * m, 2)}
    assert set(seen["layer"]) == {(16, 2 * m)}
    assert tr.nets.D(torch.randn(16 * m, 2)).shape == (16,)


def test_images_are_packed_on_the_channel_axis():
    tr = tiny_trainer("digits", (("packing", {"m": 2}),), steps=1, batch_size=8)
    seen = _d_inputs(tr)
    tr.train()
    assert set(seen["layer"]) == {(8, 2, 16, 16)}  # 1 channel x m = 2


def test_a_packed_input_is_m_consecutive_independent_draws():
    pack = Pack(3, torch.nn.Identity())
    x = torch.arange(12.0).view(6, 2)  # 6 samples of 2 features
    assert torch.equal(pack(x), torch.tensor([[0., 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]]))
    # the samples packed together are separate draws: the real batch is m x B distinct rows of
    # the stream (no sample repeated within a step), the latents m x B independent normals
    tr = tiny_trainer("ring8", (("packing", {"m": 2}),), steps=1, batch_size=16)
    real, _ = tr.stream.next()
    assert len(real) == 32 and len(torch.unique(real, dim=0)) == 32


def test_m_1_is_the_baseline_exactly():
    base = tiny_trainer("ring8", (), steps=6)
    base.train()
    one = tiny_trainer("ring8", (("packing", {"m": 1}),), steps=6)
    one.train()
    assert one.curves == base.curves
    for net in ("G", "D"):
        a, b = weights(getattr(base.nets, net)), weights(getattr(one.nets, net))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_gradients_reach_every_packed_sample():
    tr = tiny_trainer("ring8", (("packing", {"m": 3}),), steps=1, batch_size=8)
    x = torch.randn(24, 2, requires_grad=True)
    tr.nets.D(x).sum().backward()
    assert (x.grad.abs().sum(dim=1) > 0).all()  # each of the 3 x 8 samples gets a gradient
    # and the widened first layer's weights for each of the m slots
    w = tr.nets.D.blocks[0].main.layer.weight
    assert w.shape[1] == 6


def test_bad_params_and_batches_are_one_clear_error():
    for m in (0, -1):
        with pytest.raises(Exception, match="m must be an integer >= 1"):
            create_trick("packing", m=m)
    with pytest.raises(Exception, match="m"):
        create_trick("packing", m=1.5)
    tr = tiny_trainer("ring8", (("packing", {"m": 3}),), steps=1, batch_size=8)
    with pytest.raises(Exception, match="not a multiple of m = 3"):
        tr.nets.D(torch.randn(10, 2))


def test_how_it_combines_is_data():
    tricks = set(list_tricks())
    assert set(COMBINES) <= tricks, set(COMBINES) - tricks
    cls = type(create_trick("packing"))
    excluded = {k for k, v in COMBINES.items() if v.startswith("excluded")}
    assert set(cls.excludes) == excluded
    for name in excluded:
        reasons = conflict_reasons([create_trick("packing"), create_trick(name)], "2d")
        assert reasons and any("packing" in r for r in reasons), name
    for name in ("instance_noise", "minibatch_stddev", "spectral_norm", "dual_discriminator"):
        assert not conflict_reasons([create_trick("packing"), create_trick(name)], "2d"), name


@pytest.mark.parametrize("other", ["instance_noise", "minibatch_stddev", "spectral_norm",
                                   "dual_discriminator", "unrolled"])
def test_it_trains_beside_tricks_that_touch_d(other):
    tr = tiny_trainer("ring8", ("packing", other), steps=2, batch_size=8)
    assert tr.train() == ("done", "")


def test_it_is_classified_for_the_chance_check_and_step_costs():
    assert "packing" in KEEPS_D_LOSS  # D's BCE loss and targets are the baseline's
    assert "packing" in RATIO["2d"] and "packing" in RATIO["image"]
