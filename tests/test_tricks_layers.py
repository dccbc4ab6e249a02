"""Layer and architecture tricks: batch_norm, dropout, minibatch_stddev,
minibatch_discrimination, virtual_batch_norm, dual_discriminator, self_attention.
Each test proves a mechanism on tiny nets."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.trickapi.registry import conflict_reasons, create_trick, describe
from tests.tiny import tiny_trainer, weights

LAYER_TRICKS = ["batch_norm", "dropout", "minibatch_stddev", "minibatch_discrimination",
                "virtual_batch_norm", "dual_discriminator", "self_attention"]
IMAGE_ONLY = {"self_attention"}


def _cases():
    for name in LAYER_TRICKS:
        for ds in ("ring8", "digits"):
            if ds == "ring8" and name in IMAGE_ONLY:
                continue
            yield name, ds


def _z(n, dim=8, seed=1):
    return torch.randn(n, dim, generator=torch.Generator().manual_seed(seed))


def _real(trainer, n=16):
    return trainer._reference_real(n)


# -- every trick: declared, trains, resumes exactly -----------------------------------------------
@pytest.mark.parametrize("name", LAYER_TRICKS)
def test_declarations(name):
    import dataclasses
    import sys

    info = describe(name)
    assert info["summary"] and info["source"]
    t = create_trick(name)
    assert dataclasses.is_dataclass(t.p)
    assert len(sys.modules[type(t).__module__].__doc__) > 200  # what it changes, with the paper


@pytest.mark.parametrize("name,ds", list(_cases()))
def test_trains_and_resumes_exactly(name, ds, tmp_path):
    straight = tiny_trainer(ds, [name], steps=3)
    assert straight.train() == ("done", "")
    assert straight.curves and all(math.isfinite(v) for c in straight.curves.values() for _, v in c)

    first = tiny_trainer(ds, [name], steps=3, workdir=tmp_path)
    assert first.train(stop_after=1)[0] == "interrupted"
    resumed = tiny_trainer(ds, [name], steps=3, workdir=tmp_path)
    assert resumed.try_resume() and resumed.step == 1
    assert resumed.train() == ("done", "")
    for net in ("G", "D"):
        a, b = weights(getattr(straight.nets, net)), weights(getattr(resumed.nets, net))
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}/{ds}: {net}.{k} differs after resume"


def test_combined_cell_runs():
    """Every image trick that may share a cell, with spectral norm on top (it reparametrizes the
    layers the others inserted, and dual_discriminator copies the result)."""
    tricks = ["batch_norm", ("dropout", {"on_g": True}), "minibatch_stddev",
              "minibatch_discrimination", "self_attention", "dual_discriminator", "spectral_norm"]
    tr = tiny_trainer("digits", tricks, steps=3)
    assert tr.train() == ("done", "")
    tr = tiny_trainer("digits", ["virtual_batch_norm", "self_attention", "minibatch_stddev"],
                      steps=3)
    assert tr.train() == ("done", "")


# -- batch_norm -----------------------------------------------------------------------------------
@pytest.mark.parametrize("ds,cls", [("ring8", nn.BatchNorm1d), ("digits", nn.BatchNorm2d)])
def test_batch_norm_placement(ds, cls):
    tr = tiny_trainer(ds, ["batch_norm"], steps=1)
    G, D = tr.nets.G, tr.nets.D
    assert all(isinstance(s.norm, cls) for s in G.blocks)
    bn_types = nn.modules.batchnorm._BatchNorm
    assert not any(isinstance(m, bn_types) for m in G.synthesis.to_out.modules())
    assert isinstance(D.blocks[0].norm, nn.Identity) and D.blocks[0].is_input
    assert all(isinstance(s.norm, cls) for s in D.blocks[1:])


def test_batch_norm_normalises_with_batch_statistics():
    tr = tiny_trainer("digits", ["batch_norm"], steps=1)
    G = tr.nets.G
    bn = G.blocks[1].norm
    seen = {}
    h = bn.register_forward_hook(lambda m, i, o: seen.update(x=o))
    G(_z(32))
    h.remove()
    normed = (seen["x"] - bn.bias.view(1, -1, 1, 1)) / bn.weight.view(1, -1, 1, 1)
    assert normed.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (normed.var(dim=(0, 2, 3), unbiased=False) - 1).abs().max() < 1e-2
    # an example's output depends on its batch (in train mode, and by default in eval mode too)
    z = _z(8)
    for mode in (G.train, G.eval):
        mode()
        with torch.no_grad():
            assert not torch.allclose(G(z)[:2], G(z[:2]), atol=1e-4)
    assert not any(b.startswith("synthesis") and "running" in b for b, _ in G.named_buffers())


def test_batch_norm_running_stats_option():
    tr = tiny_trainer("digits", [("batch_norm", {"g_eval_stats": "running"})], steps=3)
    tr.train()
    G = tr.nets.G.eval()
    z = _z(8)
    with torch.no_grad():
        assert torch.allclose(G(z)[:2], G(z[:2]), atol=1e-6)  # eval: running stats, per-example
    assert tr.nets.G.blocks[0].norm.num_batches_tracked > 0


def test_batch_norm_conflicts():
    bn, vbn = create_trick("batch_norm"), create_trick("virtual_batch_norm")
    reasons = conflict_reasons([bn, vbn], "image")
    assert any("g_normalization" in r for r in reasons)
    assert any("wgan_gp excludes batch_norm" in r
               for r in conflict_reasons([bn, create_trick("wgan_gp")], "image"))


# -- dropout --------------------------------------------------------------------------------------
def test_dropout_in_every_d_stage_follows_mode():
    tr = tiny_trainer("digits", ["dropout"], steps=1)
    D, G = tr.nets.D, tr.nets.G
    assert all(isinstance(s.dropout, nn.Dropout) and s.dropout.p == 0.5 for s in D.blocks)
    assert all(isinstance(s.dropout, nn.Identity) for s in G.blocks)  # on_g defaults to False
    x = _real(tr)
    D.train()
    with torch.no_grad():
        assert not torch.equal(D(x), D(x))
        out = D.blocks[0].dropout(torch.ones(4000))
    assert abs((out == 0).float().mean().item() - 0.5) < 0.05
    assert torch.allclose(out[out != 0], torch.tensor(2.0))  # inverted dropout: kept * 1/(1-p)
    D.eval()
    with torch.no_grad():
        assert torch.equal(D(x), D(x))


def test_dropout_on_g_stays_on_in_eval():
    tr = tiny_trainer("digits", [("dropout", {"on_g": True})], steps=1)
    G = tr.nets.G.eval()
    z = _z(4)
    with torch.no_grad():
        assert not torch.equal(G(z), G(z))  # ganhacks #17: dropout noise at test time too


# -- minibatch_stddev -----------------------------------------------------------------------------
def test_minibatch_stddev_layer_matches_definition():
    from tricks.minibatch_stddev import MinibatchStdDev, group_for

    assert [group_for(b, 4) for b in (16, 6, 5, 3, 2, 1)] == [4, 3, 1, 3, 2, 1]
    layer = MinibatchStdDev(4)
    x = torch.randn(8, 3, 4, 4)
    y = layer(x)
    assert y.shape == (8, 4, 4, 4) and torch.equal(y[:, :3], x)
    # groups of 4: sample i is in group i % 2 (official grouping)
    for m in range(2):
        grp = x[m::2]
        expect = (grp.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(y[m::2, 3], expect.expand(4, 4, 4), atol=1e-6)
    # MLP features [B, F] get one extra feature; identical samples have std ~0
    flat = torch.ones(6, 5)
    out = layer(flat)  # 6 -> groups of 3
    assert out.shape == (6, 6) and torch.allclose(out[:, 5], torch.full((6,), 1e-4))
    # batch 5 (prime > 4): groups of one sample carry std 0 (sqrt(eps))
    assert torch.allclose(layer(torch.randn(5, 7))[:, 7], torch.full((5,), 1e-4))


@pytest.mark.parametrize("ds", ["ring8", "digits"])
def test_minibatch_stddev_feeds_the_head(ds):
    tr = tiny_trainer(ds, ["minibatch_stddev"], steps=1)
    D = tr.nets.D
    base = tiny_trainer(ds, [], steps=1).nets.D
    assert D.feature_channels == base.feature_channels + 1
    x = _real(tr, 8)
    # D's output now depends on the batch: the same sample scores differently among copies of
    # itself (std 0) than among diverse samples
    with torch.no_grad():
        alone = D(x[:1].expand(8, *x.shape[1:]).contiguous())[0]
        mixed = D(x)[0]
    assert not torch.allclose(alone, mixed)


# -- minibatch_discrimination --------------------------------------------------------------------
def test_minibatch_discrimination_matches_formula():
    from tricks.minibatch_discrimination import MinibatchDiscrimination

    layer = MinibatchDiscrimination(6, n_kernels=3, kernel_dim=2, data_init=False)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0, 0.0]))
    x = torch.randn(5, 6)
    o = layer(x)[:, 6:]
    W = layer.theta * layer.log_scale.exp() / layer.theta.norm(dim=0)  # weight-normalised T
    assert torch.allclose(W.norm(dim=0), layer.log_scale.exp())
    M = torch.einsum("na,akc->nkc", x, W)
    for i in range(5):
        for b in range(3):
            expect = sum(torch.exp(-(M[i, b] - M[j, b]).abs().sum()) for j in range(5) if j != i)
            assert torch.allclose(o[i, b], expect + layer.bias[b], atol=1e-5)
    # identical samples: every other sample is at distance 0 -> o = (B - 1) + bias
    same = layer(x[:1].expand(5, 6))[:, 6:]
    assert torch.allclose(same, 4 + layer.bias.detach().expand(5, 3), atol=1e-5)
    # conv features: computed on the globally pooled features, broadcast over positions as extra
    # channels
    conv = MinibatchDiscrimination(2, n_kernels=4, data_init=False)
    fmap = torch.randn(5, 2, 3, 3)
    y = conv(fmap)
    assert y.shape == (5, 6, 3, 3) and torch.equal(y[:, 2:, 0, 0], y[:, 2:, 2, 1])
    assert torch.allclose(y[:, 2:, 0, 0], conv.closeness(fmap.mean(dim=(2, 3))))


def test_minibatch_discrimination_data_init_and_resume():
    tr = tiny_trainer("digits", ["minibatch_discrimination"], steps=1)
    D = tr.nets.D
    layer = D.pre_head[0]
    assert D.feature_channels == 16 + 100 and not bool(layer.calibrated)
    x = _real(tr)
    feats = D.features(x)
    D.train()
    with torch.no_grad():
        o = layer(feats)[:, 16:, 0, 0]
        assert bool(layer.calibrated)
        assert o.mean(dim=0).abs().max() < 1e-4                 # bias centres o on the init batch
        dist = layer._distances(feats) + 1e6 * torch.eye(16)[..., None]
        assert torch.allclose(dist.min(dim=1).values.mean(dim=0), torch.full((100,), 2.0),
                              rtol=1e-3)                        # mean nearest-neighbour distance 2
    assert "pre_head.0.calibrated" in D.state_dict()


# -- virtual_batch_norm ---------------------------------------------------------------------------
@pytest.mark.parametrize("ds", ["ring8", "digits"])
def test_vbn_example_independent_of_its_batch(ds):
    tr = tiny_trainer(ds, ["virtual_batch_norm"], steps=2)
    tr.train()
    G = tr.nets.G
    z = _z(12)
    with torch.no_grad():
        full = G(z)
        assert full.shape[0] == 12
        for mode in (G.train, G.eval):
            mode()
            assert torch.allclose(G(z[:1]), full[:1], atol=1e-5)
            assert torch.allclose(G(torch.cat([z[:1], _z(5, seed=9)]))[:1], full[:1], atol=1e-5)
        # ... unlike batch norm
        bn = tiny_trainer(ds, ["batch_norm"], steps=1).nets.G
        assert not torch.allclose(bn(z[:2])[:1], bn(z)[:1], atol=1e-4)
        # the reference batch matters
        ref = G.blocks[0].vbn_z_ref
        ref.copy_(_z(ref.shape[0], seed=5))
        assert not torch.allclose(G(z[:1]), full[:1], atol=1e-4)


def test_vbn_statistics_and_reference():
    from tricks.virtual_batch_norm import VirtualBatchNorm

    a = tiny_trainer("digits", ["virtual_batch_norm"], steps=1, batch_size=16)
    b = tiny_trainer("digits", ["virtual_batch_norm"], steps=1, batch_size=16)
    c = tiny_trainer("digits", ["virtual_batch_norm"], steps=1, batch_size=16, seed=3)
    ref = lambda t: t.nets.G.blocks[0].vbn_z_ref  # noqa: E731
    assert ref(a).shape == (16, 8)
    assert torch.equal(ref(a), ref(b)) and not torch.equal(ref(a), ref(c))
    assert "synthesis.blocks.0.vbn_z_ref" in a.nets.G.state_dict()
    assert all(isinstance(s.norm, VirtualBatchNorm) for s in a.nets.G.blocks)

    # the combined statistics: 1/(N+1) of the example, N/(N+1) of the reference
    layer = VirtualBatchNorm(3)
    ref, own = torch.randn(4, 3, 2, 2), torch.randn(2, 3, 2, 2) * 3 + 1
    layer.rows.n = 4
    out = layer(torch.cat([ref, own]))
    rm, rs = ref.mean(dim=(0, 2, 3)), ref.square().mean(dim=(0, 2, 3))
    for i in range(2):
        mu = own[i].mean(dim=(1, 2)) / 5 + rm * 4 / 5
        var = own[i].square().mean(dim=(1, 2)) / 5 + rs * 4 / 5 - mu ** 2
        expect = ((own[i] - mu[:, None, None]) / (var[:, None, None] + 1e-5).sqrt()
                  * layer.weight[:, None, None] + layer.bias[:, None, None])
        assert torch.allclose(out[4 + i], expect, atol=1e-5)
    layer.rows.n = 0
    with pytest.raises(RuntimeError, match="inside a call of G"):
        layer(own)
    G = a.nets.G
    z = _z(3)
    with pytest.raises(RuntimeError, match="inside a call of G"):
        G.blocks[0](z.view(3, 8, 1, 1))
    # G.synthesis sees (and returns) only the batch's rows: what path_length differentiates
    seen = []
    hook = G.synthesis.register_forward_pre_hook(lambda m, args: seen.append(args[0].shape[0]))
    with torch.no_grad():
        assert torch.equal(G(z), G.synthesis(G.mapping(z)))
    hook.remove()
    assert seen == [3, 3]
    assert G.blocks[0].norm.rows.n == 0 and not G.blocks[0].norm.rows.active


# -- dual_discriminator ---------------------------------------------------------------------------
def test_dual_discriminator_two_independent_ds():
    tr = tiny_trainer("digits", ["minibatch_stddev", "dual_discriminator", "spectral_norm"],
                      steps=1)
    D = tr.nets.D.eval()  # eval: spectral norm's power iteration does not step between calls
    x = _real(tr, 6)
    with torch.no_grad():
        out = D(x)
        assert out.shape == (6, 2)
        assert torch.equal(out[:, 0], D.d1(x)) and torch.equal(out[:, 1], D.d2(x))
        assert torch.equal(D.features(x), D.d1.features(x))
    p1, p2 = dict(D.d1.named_parameters()), dict(D.d2.named_parameters())
    assert p1.keys() == p2.keys()
    for k in p1:
        assert p1[k].data_ptr() != p2[k].data_ptr()
        if p1[k].dim() > 1:  # independently drawn from the same distribution (here N(0, 0.02))
            assert not torch.equal(p1[k], p2[k]), k
            assert abs(p2[k].std().item() / p1[k].std().item() - 1) < 0.35, k
            assert abs(p2[k].mean().item()) < 0.02, k
        else:  # the head's zero bias stays zero
            assert torch.equal(p1[k], p2[k]), k
    # D2's spectral norm restarted for its new weights: top singular value ~1 at once
    conv = D.d2.blocks[1].main
    with torch.no_grad():
        sigma = torch.linalg.matrix_norm(conv.weight.flatten(1), ord=2)
    assert abs(sigma.item() - 1) < 0.05
    # D's parameters are both Ds' (one optimizer trains both)
    assert len(list(D.parameters())) == len(p1) + len(p2)


def test_reinitialize_redraws_from_each_tensors_own_scale():
    from tricks._lib.layers import reinitialize
    from tricks.self_attention import SelfAttention2d

    torch.manual_seed(0)
    he = nn.Linear(400, 300)
    nn.init.kaiming_normal_(he.weight)
    net = nn.Sequential(he, SelfAttention2d(16))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    reinitialize(net)
    after = net.state_dict()
    assert not torch.equal(before["0.weight"], after["0.weight"])
    assert abs(after["0.weight"].std() / before["0.weight"].std() - 1) < 0.02  # He scale kept
    assert torch.equal(after["1.gamma"], torch.zeros(()))                      # gamma stays 0


def test_dual_discriminator_losses_match_paper():
    from bench.trickapi.trick import StepContext
    from tricks.dual_discriminator import log_softplus

    t = create_trick("dual_discriminator")
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    sp = F.softplus
    ctx = StepContext(phase="d", step=0, steps=1, nets=None, critic=None, real=None, z=None,
                      fake=None, real_in=None, d_real=real, d_fake=fake)
    expect_d = (-0.2 * torch.log(sp(real[:, 0])).mean() + sp(fake[:, 0]).mean()
                + sp(real[:, 1]).mean() - 0.1 * torch.log(sp(fake[:, 1])).mean())
    assert torch.allclose(t.adversarial_loss(ctx), expect_d)
    ctx.phase = "g"
    expect_g = -sp(fake[:, 0]).mean() + 0.1 * torch.log(sp(fake[:, 1])).mean()
    assert torch.allclose(t.adversarial_loss(ctx), expect_g)
    # log softplus: exact in the normal range, finite with gradient ~1 far in the tail
    v = torch.tensor([-200.0, -30.0, -14.0, 0.0, 5.0], requires_grad=True)
    y = log_softplus(v)
    assert torch.isfinite(y).all()
    assert torch.allclose(y[2:], torch.log(sp(v[2:])))
    y.sum().backward()
    assert torch.isfinite(v.grad).all() and abs(v.grad[0].item() - 1) < 1e-6


def test_dual_discriminator_conflicts():
    dual = create_trick("dual_discriminator")
    for other in ("label_smoothing", "one_sided_label_smoothing"):
        assert conflict_reasons([dual, create_trick(other)], "image")
    assert any("adversarial_loss" in r
               for r in conflict_reasons([dual, create_trick("wgan_gp")], "image"))


# -- self_attention -------------------------------------------------------------------------------
def test_self_attention_is_identity_at_init():
    from tricks.self_attention import SelfAttention2d

    tr = tiny_trainer("digits", ["self_attention"], steps=1)
    base = tiny_trainer("digits", [], steps=1)
    G, D = tr.nets.G, tr.nets.D
    assert [type(s.post).__name__ for s in G.blocks] == ["Identity", "SelfAttention2d"]
    assert G.blocks[1].resolution == 8 and D.blocks[0].resolution == 8
    assert isinstance(D.blocks[0].post, SelfAttention2d)
    assert isinstance(D.blocks[1].post, nn.Identity)
    z, x = _z(4), _real(tr, 4)
    with torch.no_grad():
        assert torch.equal(G(z), base.nets.G(z))
        assert torch.equal(D(x), base.nets.D(x))
    assert conflict_reasons([create_trick("self_attention")], "2d")


def test_self_attention_reaches_far_pixels():
    from tricks.self_attention import SelfAttention2d

    torch.manual_seed(0)
    block = SelfAttention2d(8)
    x = torch.randn(1, 8, 8, 8)
    x2 = x.clone()
    x2[0, :, 7, 7] += 1.0  # perturb the far corner
    with torch.no_grad():
        assert torch.equal(block(x)[0, :, 0, 0], block(x2)[0, :, 0, 0])  # gamma = 0: local
        block.gamma.fill_(1.0)
        assert not torch.allclose(block(x)[0, :, 0, 0], block(x2)[0, :, 0, 0])
        beta = block.attention(x)
    assert torch.allclose(beta.sum(-1), torch.ones(1, 64)) and beta.shape == (1, 64, 64)
    assert (block.query.out_channels, block.value.out_channels) == (1, 4)  # C/8, C/2
