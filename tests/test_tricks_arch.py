"""Architecture tricks: progressive_growing (ProGAN) and stylegan. Mechanisms, training at 16, 28
and 32 px, exact checkpoint/resume and rescoring from the final checkpoint."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.data.base import Dataset
from bench.train import Trainer
from bench.trickapi.registry import conflict_reasons, create_trick
from tests.tiny import tiny_cell, tiny_trainer
from tricks._lib.karras_layers import linear, resolution_plan
from tricks._lib.style_nets import modulated_conv2d

# fake 28 / 32 px data (the real sets need files): (cell dataset name, channels, resolution)
FAKE = {"mnist": (1, 28), "cifar10": (3, 32)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny nets: one intra-op thread is fastest, and on a busy machine OpenMP's spinning threads
    make these tests ~10x slower. Restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def fake_dataset(name: str) -> Dataset:
    c, r = FAKE[name]
    x = torch.rand(64, c, r, r, generator=torch.Generator().manual_seed(r)) * 2 - 1
    return Dataset(name=name, kind="image", shape=(c, r, r), train=x, test=x[:16],
                   train_labels=None, test_labels=None, num_classes=None, num_modes=1)


def trainer(dataset: str, tricks, **kw) -> Trainer:
    if dataset not in FAKE:
        return tiny_trainer(dataset, tricks, **kw)
    workdir = kw.pop("workdir", None)
    return Trainer(tiny_cell(dataset, tricks, **kw), workdir=workdir, device="cpu",
                   progress=False, dataset=fake_dataset(dataset))


def tensors(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The tensor entries of a state dict (the growing nets also hold a small `_extra_state`)."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()
            if isinstance(v, torch.Tensor)}


def blocky(x: torch.Tensor, k: int) -> torch.Tensor:
    """x averaged over k x k blocks, then nearest-upsampled back."""
    return F.interpolate(F.avg_pool2d(x, k), scale_factor=k, mode="nearest")


# -- progressive_growing --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg():
    t = tiny_trainer("digits", ["progressive_growing"], steps=90)  # 3 phases of 30 steps
    t.nets.G.eval()
    return t


def test_resolution_plans():
    assert resolution_plan(16) == [4, 8, 16]
    assert resolution_plan(28) == [7, 14, 28]
    assert resolution_plan(32) == [4, 8, 16, 32]


def test_equalized_lr_and_lr_multiplier_keep_the_forward_and_scale_the_stored_weights():
    torch.manual_seed(0)
    eq, he = linear(400, 300, equalized=True), linear(400, 300, equalized=False)
    slow = linear(400, 300, equalized=True, lr_mul=0.01, bias_init=1.0)
    target = (2 / 400) ** 0.5  # He std for a leaky-ReLU layer
    for layer in (eq, he, slow):
        assert isinstance(layer, torch.nn.Linear)  # still found by spectral norm & co.
        assert layer.weight.std().item() == pytest.approx(target, rel=0.02)
    assert eq.parametrizations.weight.original.std().item() == pytest.approx(1.0, rel=0.02)
    assert he.weight.std().item() == pytest.approx(target, rel=0.02) and not hasattr(
        he, "parametrizations")
    assert slow.parametrizations.weight.original.std().item() == pytest.approx(100, rel=0.02)
    assert torch.allclose(slow.bias, torch.ones(300))
    assert torch.allclose(slow.parametrizations.bias.original, torch.full((300,), 100.0))


def test_pg_alpha_schedule(pg):
    trick = pg.tricks[0]
    expected = {0: (0, 1.0), 29: (0, 1.0), 30: (1, 0.0), 36: (1, 0.4), 44: (1, 14 / 15),
                45: (1, 1.0), 59: (1, 1.0), 60: (2, 0.0), 75: (2, 1.0), 89: (2, 1.0)}
    for step, (stage, alpha) in expected.items():
        got = trick.schedule(step)
        assert got[0] == stage and got[1] == pytest.approx(alpha), step
    trick.on_step(36)  # the state the nets read is the shared one, set by on_step
    assert pg.nets.G.synthesis.growth is pg.nets.D.growth
    assert (pg.nets.D.growth.stage, pg.nets.D.growth.alpha) == (1, pytest.approx(0.4))
    whole = create_trick("progressive_growing", fade_fraction=1.0)
    whole._steps, whole._levels = 90, 3
    assert whole.schedule(45) == (1, 0.5)
    none = create_trick("progressive_growing", fade_fraction=0.0)
    none._steps, none._levels = 90, 3
    assert none.schedule(30) == (1, 1.0)


def test_pg_generator_before_first_growth_is_an_upsampled_4x4_image(pg):
    pg.tricks[0].on_step(0)
    z = torch.randn(6, 8)
    with torch.no_grad():
        out = pg.nets.G(z)
        assert out.shape == (6, 1, 16, 16)
        assert torch.equal(out, F.interpolate(out[..., ::4, ::4], scale_factor=4))
        pg.tricks[0].on_step(89)
        full = pg.nets.G(z)
    assert not torch.allclose(full, blocky(full, 4), atol=1e-3)


def test_pg_discriminator_at_stage_0_ignores_detail_within_4x4_blocks(pg):
    x = torch.rand(6, 1, 16, 16) * 2 - 1
    detail = torch.randn(6, 1, 16, 16)
    detail = detail - blocky(detail, 4)  # zero mean in every 4x4 block
    D = pg.nets.D
    with torch.no_grad():
        pg.tricks[0].on_step(0)
        assert torch.allclose(D(x), D(x + detail), atol=1e-5)
        assert D(x).shape == (6,)
        pg.tricks[0].on_step(89)
        assert not torch.allclose(D(x), D(x + detail), atol=1e-4)


def test_pg_mid_fade_outputs_are_alpha_blends_of_the_two_paths(pg):
    G, D, growth = pg.nets.G, pg.nets.D, pg.nets.D.growth
    z, x = torch.randn(6, 8), torch.rand(6, 1, 16, 16) * 2 - 1
    with torch.no_grad():
        out, entry = {}, {}
        for a in (0.0, 0.3, 1.0):
            growth.set(2, a)
            out[a], entry[a] = G(z), D.entry(x)[0]
    assert torch.equal(out[0.0], F.interpolate(out[0.0][..., ::2, ::2], scale_factor=2))  # old path
    assert not torch.allclose(out[0.0], out[1.0])
    assert torch.allclose(out[0.3], 0.7 * out[0.0] + 0.3 * out[1.0], atol=1e-5)
    assert torch.allclose(entry[0.3], 0.7 * entry[0.0] + 0.3 * entry[1.0], atol=1e-5)
    # real images fade like G's output: at step 36 (stage 1 = 8 px, alpha 0.4)
    trick = pg.tricks[0]
    cur = F.avg_pool2d(x, 2)
    want = F.interpolate(0.6 * blocky(cur, 2) + 0.4 * cur, scale_factor=2)
    assert torch.allclose(trick.d_input(x, True, 36), want, atol=1e-6)
    assert trick.d_input(x, False, 36) is x  # G's images already carry the blend
    assert trick.d_input(x, True, 0) is x and trick.d_input(x, True, 45) is x


def test_pg_trains_through_every_stage():
    t = tiny_trainer("digits", ["progressive_growing"], steps=6)
    trick = t.tricks[0]
    stages = [trick.schedule(s) for s in range(6)]
    assert [s for s, _ in stages] == [0, 0, 1, 1, 2, 2] and stages[2] == (1, 0.0)
    syn = t.nets.G.synthesis
    to_rgb = [syn.to_rgb(k) for k in range(3)]
    before = [m.weight.detach().clone() for m in to_rgb]
    assert t.train() == ("done", "")
    assert all(torch.isfinite(torch.tensor(v)).all() for v in t.curves.values())
    for k, m in enumerate(to_rgb):  # every resolution's toRGB was trained
        assert not torch.equal(before[k], m.weight.detach()), k
    assert (t.nets.G.synthesis.growth.stage, t.nets.G.synthesis.growth.alpha) == (2, 1.0)


def test_pg_slots_and_applicability():
    pg_t, sg = create_trick("progressive_growing"), create_trick("stylegan")
    assert "g_normalization" in pg_t.claimed_slots()  # pixel norm
    assert "g_normalization" not in create_trick("progressive_growing",
                                                 pixel_norm=False).claimed_slots()
    assert any("g_architecture" in r for r in conflict_reasons([pg_t, sg], "image"))
    assert conflict_reasons([pg_t], "2d") and conflict_reasons([sg], "2d")
    assert any("excludes" in r for r in conflict_reasons([sg, create_trick("batch_norm")]))


# -- stylegan --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sg():
    return tiny_trainer("digits", ["stylegan"], steps=3)


def test_stylegan_mapping_network_and_attachment_points(sg):
    G = sg.nets.G
    z = torch.randn(5, 8)
    assert G.mapping(z).shape == (5, G.w_dim)
    assert sum(isinstance(m, torch.nn.Linear) for m in G.mapping.modules()) == 8
    assert [b.resolution for b in G.blocks] == [4, 8, 16]
    assert all(hasattr(b, a) for b in G.blocks for a in ("norm", "dropout", "post", "channels"))


def test_stylegan_constant_input_is_learned_and_independent_of_z(sg):
    G = sg.nets.G
    const = G.synthesis.const
    assert any(p is const for p in G.parameters()) and const.shape[1:] == (4, 4)
    seen = []
    hook = G.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        G.eval()
        with torch.no_grad():
            G(torch.randn(3, 8)), G(torch.randn(3, 8) * 5)
    finally:
        hook.remove()
        G.train()
    assert torch.equal(seen[0], seen[1]) and torch.equal(seen[0][2], const.detach())
    sg28 = trainer("mnist", ["stylegan"], steps=1)
    assert sg28.nets.G.synthesis.const.shape[1:] == (7, 7)


def test_stylegan_noise_changes_the_image_but_not_the_style(sg):
    G, syn = sg.nets.G, sg.nets.G.synthesis
    z = torch.randn(4, 8)
    layers = [m for m in syn.modules() if hasattr(m, "noise_strength")]
    assert len(layers) == syn.num_layers == 5

    def noise(seed):
        g = torch.Generator().manual_seed(seed)
        return [torch.randn(4, 1, l.noise_const.shape[-1], l.noise_const.shape[-1], generator=g)
                for l in layers]

    G.eval()
    try:
        with torch.no_grad():
            w = G.mapping(z)
            # noise strengths start at 0: noise has no effect yet
            assert torch.equal(syn(w, noise(1)), syn(w, noise(2)))
            for l in layers:
                l.noise_strength.fill_(0.5)
            a, b = syn(w, noise(1)), syn(w, noise(2))
            assert not torch.allclose(a, b) and torch.equal(a, syn(w, noise(1)))
            styles = [l.affine(w) for l in layers]  # the styles come from w alone
            assert torch.equal(G.mapping(z), w)
            syn(w, noise(3))
            assert all(torch.equal(s, l.affine(w)) for s, l in zip(styles, layers))
            for l in layers:
                l.noise_strength.zero_()
    finally:
        G.train()


def test_demodulation_gives_unit_std_per_output_channel():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 16, 16)
    weight = torch.randn(32, 64, 3, 3) * 3.0
    styles = torch.rand(4, 64) * 4 + 0.1  # arbitrary positive per-sample styles
    out = modulated_conv2d(x, weight, styles)[..., 1:-1, 1:-1]  # away from the zero padding
    std = out.std(dim=(2, 3))  # [sample, out channel]
    assert (std - 1).abs().mean() < 0.05 and (std - 1).abs().max() < 0.25
    raw = modulated_conv2d(x, weight, styles, demodulate=False)[..., 1:-1, 1:-1].std(dim=(2, 3))
    assert (raw - 1).abs().mean() > 1.0  # without demodulation the scale follows w and s
    # equals convolving each sample with its own modulated, demodulated weight w''
    for i in range(2):
        w1 = weight * styles[i].view(1, -1, 1, 1)
        w2 = w1 / (w1.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        ref = F.conv2d(x[i:i + 1], w2, padding=1)
        assert torch.allclose(modulated_conv2d(x[i:i + 1], weight, styles[i:i + 1]), ref,
                              atol=1e-4)


def test_style_mixing_only_in_train_mode():
    t = tiny_trainer("digits", [("stylegan", {"mixing_prob": 1.0})], steps=1)
    G = t.nets.G
    seen = []
    hook = G.synthesis.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    z = torch.randn(4, 8)
    try:
        with torch.no_grad():
            G.train()
            G(z)
            ws = seen[-1]
            assert ws.shape == (4, G.synthesis.num_ws, G.w_dim)
            assert torch.equal(ws[:, 0], G.mapping(z))
            assert not torch.allclose(ws[:, 0], ws[:, -1])  # a second latent from the cutoff on
            G.eval()
            assert torch.equal(G(z), G.synthesis(G.mapping(z)))
            assert seen[-1].shape == (4, G.w_dim)
    finally:
        hook.remove()


# -- both: training at 16 / 28 / 32 px, resume, rescoring ------------------------------------------
@pytest.mark.parametrize("dataset", ["digits", "mnist", "cifar10"])
@pytest.mark.parametrize("tricks", [["progressive_growing"], ["stylegan"],
                                    [("stylegan", {"modulation": "adain"})]])
def test_trains_with_finite_losses(dataset, tricks):
    t = trainer(dataset, tricks, steps=4, batch_size=8)
    assert t.train() == ("done", "")
    assert all(torch.isfinite(torch.tensor(v)).all() for v in t.curves.values())
    shape = t.data.shape
    assert t.sample(3, torch.Generator().manual_seed(0)).shape == (3, *shape)


@pytest.mark.parametrize("tricks", [
    ["progressive_growing", "minibatch_stddev", "spectral_norm", "self_attention", "dropout"],
    [("progressive_growing", {"pixel_norm": False, "equalized_lr": False}), "batch_norm"],
    ["stylegan", "path_length", ("spectral_norm", {"on_g": True}), "self_attention",
     ("dropout", {"on_g": True})],
    [("stylegan", {"equalized_lr": False, "modulation": "adain"}), "unrolled"]])
def test_other_tricks_still_work_on_the_new_nets(tricks):
    t = tiny_trainer("digits", tricks, steps=2, batch_size=8)
    assert t.train() == ("done", "")
    assert all(torch.isfinite(torch.tensor(v)).all() for v in t.curves.values())


@pytest.mark.parametrize("tricks", [["progressive_growing"], ["stylegan"],
                                    ["dual_discriminator", "progressive_growing"]])
def test_resume_is_exact_and_rescoring_samples_the_final_net(tricks, tmp_path):
    kw = dict(steps=4, checkpoint_every=2, batch_size=8)
    straight = tiny_trainer("digits", tricks, workdir=tmp_path / "a", **kw)
    assert straight.train() == ("done", "")
    first = tiny_trainer("digits", tricks, workdir=tmp_path / "b", **kw)
    assert first.train(stop_after=2)[0] == "interrupted"
    torch.manual_seed(999)
    resumed = tiny_trainer("digits", tricks, workdir=tmp_path / "b", **kw)
    assert resumed.try_resume() and resumed.step == 2
    assert resumed.train() == ("done", "")
    for net in ("G", "D"):
        a, b = tensors(getattr(straight.nets, net)), tensors(getattr(resumed.nets, net))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), net
    # a fresh trainer loading the final checkpoint (what rescoring does, without on_step) samples
    # exactly what the trained net samples
    rescore = tiny_trainer("digits", tricks, workdir=tmp_path / "a", **kw)
    assert rescore.try_resume() and rescore.step == 4
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    assert torch.equal(rescore.sample(5, gen()), straight.sample(5, gen()))
    if "dual_discriminator" in tricks:  # D2, a deep copy of D, follows the same growth schedule
        D = resumed.nets.D
        assert D.d2.growth is D.d1.growth is resumed.nets.G.synthesis.growth
