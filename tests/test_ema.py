"""EMA of G: the average follows the formula, is what gets sampled, copies buffers, resumes
exactly, and leaves training (what D sees) unchanged."""
import math

import torch

from tests.test_trainer import _interrupted_vs_straight
from tests.tiny import tiny_trainer, weights
from tricks.ema_generator import ema_beta


def _ema(t):
    return next(x for x in t.tricks if x.name == "ema_generator")


def test_beta_has_the_half_life_in_images_and_ramps_up():
    # without ramp-up: after half_life / batch updates the old weights count one half
    beta = ema_beta(10_000, 64, half_life_kimg=10.0, rampup=0.0)
    assert math.isclose(beta ** (10_000 / 64), 0.5)
    # ramp-up: at step 0 nothing has been seen, so the average is a copy of G
    assert ema_beta(0, 64, 10.0, 0.05) == 0.0
    # early on the half-life is 5% of the images seen so far; later it is capped at 10k
    assert math.isclose(ema_beta(100, 64, 10.0, 0.05), 0.5 ** (64 / (100 * 64 * 0.05)))
    assert ema_beta(10**6, 64, 10.0, 0.05) == beta


def test_average_equals_a_hand_computed_ema_of_g():
    params = {"half_life_kimg": 0.05, "rampup": 0.05}
    t = tiny_trainer("ring8", [("ema_generator", params)], steps=6, batch_size=16)
    ref = {k: v.clone() for k, v in weights(t.nets.G).items()}
    for step in range(6):
        t.train_step()
        beta = ema_beta(step, 16, **params)
        ref = {k: g + beta * (ref[k] - g) for k, g in weights(t.nets.G).items()}
    got = weights(_ema(t).G_ema)
    assert set(got) == set(ref)
    for k in ref:
        torch.testing.assert_close(got[k], ref[k])
    assert not torch.equal(got["synthesis.to_out.weight"],
                           weights(t.nets.G)["synthesis.to_out.weight"])


def test_the_average_is_what_gets_sampled_and_training_is_unchanged():
    t = tiny_trainer("ring8", ["ema_generator"], steps=4, seed=3)
    t.train()
    z = torch.randn(5, t.cell.net.z_dim, generator=torch.Generator().manual_seed(0))
    x = t.sample(5, torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(x, _ema(t).G_ema(z))
        assert not torch.equal(x, t.nets.G(z))
    plain = tiny_trainer("ring8", [], steps=4, seed=3)
    plain.train()
    assert plain.curves == t.curves  # G and D trained exactly as without the trick
    assert t.make_record("done").nets == plain.make_record("done").nets  # not counted


def test_buffers_are_copied_not_averaged():
    t = tiny_trainer("digits", [("batch_norm", {"g_eval_stats": "running"}), "ema_generator"],
                     steps=3)
    t.train()
    g, e = dict(t.nets.G.named_buffers()), dict(_ema(t).G_ema.named_buffers())
    assert g and set(g) == set(e)
    for k in g:
        assert torch.equal(g[k], e[k]), k


def test_resume_restores_the_average_exactly(tmp_path):
    straight, resumed = _interrupted_vs_straight("ring8", ["ema_generator"], tmp_path)
    a, b = weights(_ema(straight).G_ema), weights(_ema(resumed).G_ema)
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = _ema(resumed).state_dict()
    assert all(torch.is_tensor(v) for v in state["G_ema"].values())  # weights_only loads it


def test_with_every_compatible_trick_the_average_starts_as_g_and_is_its_own_copy():
    """After step 0 (beta = 0) G_ema samples what G samples; afterwards nothing done to G's
    weights or buffers changes what G_ema samples (no module, hook or buffer is shared by
    mistake). Step-state shared on purpose (growth, labels) is read, never written, by G."""
    from bench.trickapi.registry import conflict_reasons, create_trick, list_tricks

    ema = create_trick("ema_generator")
    for ds, kind in (("ring8", "2d"), ("digits", "image")):
        for other in list_tricks():
            if other == "ema_generator" or conflict_reasons([ema, create_trick(other)], kind):
                continue
            t = tiny_trainer(ds, ["ema_generator", other], steps=1, batch_size=8)
            t.train()
            x = t.sample(8, torch.Generator().manual_seed(0))
            tr = _ema(t)
            tr.G_ema, copy = t.nets.G, tr.G_ema
            assert torch.allclose(x, t.sample(8, torch.Generator().manual_seed(0)),
                                  atol=1e-6), (ds, other)
            tr.G_ema = copy
            with torch.no_grad():
                for p in t.nets.G.parameters():
                    p.add_(1.0)
                for b in t.nets.G.buffers():
                    if b.is_floating_point():
                        b.add_(1.0)
            assert torch.equal(x, t.sample(8, torch.Generator().manual_seed(0))), (ds, other)
