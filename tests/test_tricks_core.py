"""Mechanism tests of the six interface-proving tricks."""
import torch
from torch import nn

from bench.core.config import OptimConfig
from bench.trickapi.registry import create_trick
from bench.trickapi.trick import StepContext
from tests.tiny import tiny_trainer, weights


def test_label_smoothing_targets_are_exactly_the_declared_values():
    t = create_trick("label_smoothing")
    real_t, fake_t = t.targets(torch.ones(4), torch.zeros(4), 0)
    assert torch.equal(real_t, torch.full((4,), 0.9)) and torch.equal(fake_t, torch.full((4,), 0.1))


def test_one_sided_label_smoothing_leaves_fake_targets_at_zero():
    t = create_trick("one_sided_label_smoothing", real=0.8)
    real_t, fake_t = t.targets(torch.ones(4), torch.zeros(4), 0)
    assert torch.allclose(real_t, torch.full((4,), 0.8)) and torch.equal(fake_t, torch.zeros(4))


def test_trainer_feeds_smoothed_targets_to_the_loss(monkeypatch):
    seen = {}
    trainer = tiny_trainer("ring8", ["label_smoothing"], steps=1)
    real_loss = trainer.loss_fn

    def spy(ctx):
        if ctx.phase == "d":
            seen["real_t"], seen["fake_t"] = ctx.real_t.clone(), ctx.fake_t.clone()
        return real_loss(ctx)

    trainer.loss_fn = spy
    trainer.train()
    assert torch.allclose(seen["real_t"], torch.full_like(seen["real_t"], 0.9))
    assert torch.allclose(seen["fake_t"], torch.full_like(seen["fake_t"], 0.1))


def _top_singular_values(module: nn.Module) -> list[float]:
    out = []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            w = m.weight.detach()
            w = w.transpose(0, 1) if isinstance(m, nn.ConvTranspose2d) else w
            out.append(torch.linalg.matrix_norm(w.flatten(1), ord=2).item())
    return out


def test_spectral_norm_drives_top_singular_value_of_d_to_one():
    trainer = tiny_trainer("digits", ["spectral_norm"], steps=1)
    D = trainer.nets.D
    with torch.no_grad():  # power iteration converges over training-mode forward passes
        for _ in range(30):
            D(torch.randn(8, 1, 16, 16))
    sigmas = _top_singular_values(D)
    assert len(sigmas) == 3
    assert all(abs(s - 1.0) < 0.05 for s in sigmas), sigmas
    assert any(abs(s - 1.0) > 0.2 for s in _top_singular_values(trainer.nets.G))  # G untouched


def test_spectral_norm_on_g_option():
    trainer = tiny_trainer("ring8", [("spectral_norm", {"on_g": True})], steps=1)
    with torch.no_grad():
        for _ in range(30):
            trainer.nets.G(torch.randn(8, 8))
    assert all(abs(s - 1.0) < 0.05 for s in _top_singular_values(trainer.nets.G))


def test_spectral_norm_bounds_ds_logit_across_a_ring8_mode():
    """The docstring's scale argument: with spectral norm D's logit moves by at most ~0.03 across
    a ring8 mode's 3-sigma radius, even with weights 100x larger; without it, it does not."""
    sigma = 0.01
    for tricks, bounded in ((["spectral_norm"], True), ([], False)):
        trainer = tiny_trainer("ring8", tricks, steps=1, width=64)
        D = trainer.nets.D
        with torch.no_grad():
            for p in D.parameters():
                p.mul_(100.0)
            for _ in range(60):  # power iteration converges over training-mode forward passes
                D(torch.randn(64, 2))
            D.eval()
            centre = torch.tensor([[1.0, 0.0]])
            angle = torch.rand(4096) * 2 * torch.pi
            edge = centre + 3 * sigma * torch.stack([angle.cos(), angle.sin()], dim=1)
            moved = (D(edge) - D(centre)).abs().max().item()
        assert (moved <= 3 * sigma * 1.05) == bounded, (tricks, moved)


def test_instance_noise_sigma_decays_linearly_to_zero():
    trainer = tiny_trainer("ring8", ["instance_noise"], steps=11)
    noise = trainer.tricks[0]
    assert [round(noise.sigma_at(s), 6) for s in (0, 5, 10)] == [0.1, 0.05, 0.0]
    x = torch.zeros(20000, 2)
    assert abs(noise.d_input(x, True, 0).std().item() - 0.1) < 0.005
    assert torch.equal(noise.d_input(x, True, 10), x)


def test_instance_noise_fraction_noises_only_part_of_the_batch():
    torch.manual_seed(0)
    t = create_trick("instance_noise", fraction=0.25, anneal="none")
    out = t.d_input(torch.zeros(4000, 2), True, 0)
    noised = (out.abs().sum(dim=1) > 0).float().mean().item()
    assert abs(noised - 0.25) < 0.03


def _linear_critic(w: torch.Tensor) -> nn.Module:
    lin = nn.Linear(2, 1, bias=False)
    lin.weight.data = w.view(1, 2)
    return nn.Sequential(lin, nn.Flatten(0))


def test_wgan_loss_uses_raw_critic_outputs_no_sigmoid():
    t = create_trick("wgan_gp")
    d_real, d_fake = torch.tensor([3.0, 5.0]), torch.tensor([-2.0, 10.0])
    ctx = StepContext(phase="d", step=0, steps=1, nets=None, critic=None, real=None, z=None,
                      fake=None, real_in=None, d_real=d_real, d_fake=d_fake)
    assert t.adversarial_loss(ctx).item() == (4.0 - 4.0)
    ctx.phase = "g"
    assert t.adversarial_loss(ctx).item() == -4.0


def test_wgan_gp_penalty_is_computed_at_interpolates():
    t = create_trick("wgan_gp")
    seen = []
    critic = _linear_critic(torch.tensor([3.0, 4.0]))  # |grad| = 5 everywhere
    critic.register_forward_pre_hook(lambda m, inp: seen.append(inp[0].detach().clone()))
    real, fake = torch.tensor([[1.0, 1.0]] * 64), torch.tensor([[-1.0, 3.0]] * 64)
    ctx = StepContext(phase="d", step=0, steps=1, nets=None, critic=critic, real=real, z=None,
                      fake=fake, real_in=real, fake_in=fake, d_real=None, d_fake=None)
    gp = t.penalty(ctx)["gp"]
    assert torch.isclose(gp, torch.tensor(10.0 * (5 - 1) ** 2))
    x_hat = seen[0]
    eps = (x_hat[:, 0] - fake[:, 0]) / (real[:, 0] - fake[:, 0])
    assert torch.allclose(x_hat, eps[:, None] * real + (1 - eps[:, None]) * fake, atol=1e-6)
    assert (eps > 0).all() and (eps < 1).all() and eps.std() > 0.1  # random points on the segment
    ctx.phase = "g"
    assert t.penalty(ctx) == {}


def test_wgan_gp_sets_optimizer_and_critic_steps():
    trainer = tiny_trainer("ring8", ["wgan_gp"], steps=2)
    assert trainer.n_d == 5
    assert trainer.d_spec == OptimConfig(lr=1e-4, beta1=0.0, beta2=0.9) == trainer.g_spec
    start = trainer.stream.state_dict()["pos"]
    trainer.train_step()
    assert trainer.stream.state_dict()["pos"] - start == 5 * 16  # five real batches per step
    assert trainer.d_opt.param_groups[0]["betas"] == (0.0, 0.9)


def test_unrolling_leaves_d_as_the_plain_update_would_and_changes_g():
    runs = {}
    for name, tricks in (("plain", []), ("unrolled", [("unrolled", {"k": 3})])):
        trainer = tiny_trainer("ring8", tricks, steps=2, seed=3)  # seeds the global RNG
        trainer.train_step()
        d_after_one = weights(trainer.nets.D)
        trainer.train_step()  # same z again: unrolling consumed no global random numbers
        runs[name] = (d_after_one, weights(trainer.nets.G), torch.randn(4))
    (d_plain, g_plain, rng_plain), (d_unrolled, g_unrolled, rng_unrolled) = runs.values()
    for k, v in d_plain.items():
        assert torch.equal(v, d_unrolled[k]), k
    assert any(not torch.equal(g_plain[k], g_unrolled[k]) for k in g_plain)
    assert torch.equal(rng_plain, rng_unrolled)


def test_unrolled_critic_is_d_advanced_k_steps():
    trainer = tiny_trainer("ring8", [("unrolled", {"k": 2})], steps=1)
    trick = trainer.tricks[0]
    captured = {}
    original = trick.g_critic

    def spy(ctx):
        critic = original(ctx)
        captured["critic"], captured["D"] = critic, ctx.nets.D
        return critic

    trick.g_critic = spy
    trainer.train_step()
    D, critic = captured["D"], captured["critic"]
    assert critic is not D
    unrolled = dict(critic.named_parameters())
    assert any(not torch.equal(p, unrolled[n]) for n, p in D.named_parameters())
