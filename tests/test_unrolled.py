"""Unrolled GAN, second order (Metz et al. 2017 eq. 12): G's gradient goes through the k Adam
updates of D. Checked against finite differences of the loss after k real torch.optim.Adam steps."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.trickapi.trick import StepContext
from tests.tiny import tiny_trainer, weights
from tricks import create_trick


def _problem(seed=0):
    """A float64 tiny GAN: linear G on 2-D, MLP D, with D's Adam already a few steps in."""
    g = torch.Generator().manual_seed(seed)
    G = nn.Linear(2, 2).double()
    D = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 1), nn.Flatten(0)).double()
    for m in (G, D):
        for p in m.parameters():
            p.data = torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.7
    real = torch.randn(16, 2, generator=g, dtype=torch.float64) + 1.0
    z = torch.randn(16, 2, generator=g, dtype=torch.float64)
    opt = torch.optim.Adam(D.parameters(), lr=0.05, betas=(0.5, 0.999))
    for _ in range(3):  # non-trivial moment state
        loss = F.softplus(-D(real)).mean() + F.softplus(D(G(z).detach())).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return G, D, opt, real, z


def _ctx(G, D, opt, real, z):
    def d_loss_fn(critic, fake=None):
        if fake is None:
            with torch.no_grad():
                fake = G(z)
        return F.softplus(-critic(real)).mean() + F.softplus(critic(fake)).mean()

    fake = G(z)
    return StepContext(phase="g", step=0, steps=1, nets=type("N", (), {"D": D, "G": G})(),
                       critic=D, real=real, z=z, fake=fake, real_in=real,
                       d_loss_fn=d_loss_fn, d_optimizer=opt)


def _g_loss(critic, fake):
    return F.softplus(-critic(fake)).mean()


def test_second_order_gradient_equals_finite_differences_of_the_unrolled_loss():
    G, D, opt, real, z = _problem()
    k = 3
    ctx = _ctx(G, D, opt, real, z)
    critic = create_trick("unrolled", k=k).g_critic(ctx)
    grads = torch.autograd.grad(_g_loss(critic, ctx.fake), list(G.parameters()))

    # f(theta_G) = G's loss against D after k real torch.optim.Adam steps on a copy (no graph)
    first = create_trick("unrolled", k=k, first_order=True)

    def f():
        critic = first.g_critic(_ctx(G, D, opt, real, z))
        with torch.no_grad():
            return _g_loss(critic, G(z)).item()

    h = 1e-6
    for p, grad in zip(G.parameters(), grads):
        fd = torch.zeros_like(p)
        for i in range(p.numel()):
            flat = p.data.view(-1)
            old = flat[i].item()
            flat[i] = old + h
            up = f()
            flat[i] = old - h
            down = f()
            flat[i] = old
            fd.view(-1)[i] = (up - down) / (2 * h)
        assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-8), (grad, fd)

    # the first-order gradient treats theta_D^k as constants: it differs here
    c = _ctx(G, D, opt, real, z)
    first_grads = torch.autograd.grad(_g_loss(first.g_critic(c), c.fake), list(G.parameters()))
    assert any(not torch.allclose(a, b, rtol=1e-3) for a, b in zip(grads, first_grads))


def test_second_order_unrolled_values_equal_torch_adam_steps_and_d_is_untouched():
    G, D, opt, real, z = _problem(1)
    opt.zero_grad(set_to_none=True)
    before_d, before_opt = weights(D), copy.deepcopy(opt.state_dict())
    ctx = _ctx(G, D, opt, real, z)
    second = create_trick("unrolled", k=4).g_critic(ctx)
    first = create_trick("unrolled", k=4, first_order=True).g_critic(_ctx(G, D, opt, real, z))
    for name, p in first.named_parameters():
        assert torch.allclose(second.params[name], p, rtol=1e-10, atol=1e-12), name
    assert torch.allclose(second(real), first(real), rtol=1e-10)
    for k, v in weights(D).items():
        assert torch.equal(v, before_d[k])
    for p in D.parameters():
        assert p.grad is None  # D's leaves never joined the unrolled graph
    after = opt.state_dict()["state"]
    for i, s in before_opt["state"].items():
        assert all(torch.equal(s[key], after[i][key]) for key in ("exp_avg", "exp_avg_sq"))


def test_first_order_option_is_the_version_1_computation():
    """first_order=True is the old code path: G's gradient against a deep copy of D advanced k
    torch.optim.Adam steps, nothing flowing through the updates."""
    G, D, opt, real, z = _problem(2)
    ctx = _ctx(G, D, opt, real, z)
    critic = create_trick("unrolled", k=2, first_order=True).g_critic(ctx)
    assert isinstance(critic, nn.Module) and critic is not D
    ref = copy.deepcopy(D)
    ref_opt = type(opt)(ref.parameters(), **opt.defaults)
    ref_opt.load_state_dict(copy.deepcopy(opt.state_dict()))
    for _ in range(2):
        loss = ctx.d_loss_fn(ref)
        ref_opt.zero_grad()
        loss.backward()
        ref_opt.step()
    got = torch.autograd.grad(_g_loss(critic, ctx.fake), list(G.parameters()))
    want = torch.autograd.grad(_g_loss(ref, G(z)), list(G.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(got, want))


@pytest.mark.parametrize("others", [["feature_matching"], ["weight_penalty"],
                                    ["historical_averaging"], ["spectral_norm"],
                                    [("gradient_penalty", {})]])
def test_second_order_runs_with_tricks_that_read_the_critic(others):
    """The functional critic supports features(), parameters(), named_parameters(), buffers of
    spectral norm and double-backward penalties; D's parameters stay as the plain update leaves
    them (buffers that G's forward pass would advance, e.g. spectral-norm vectors, are not: G's
    pass goes through the unrolled critic, as in version 1)."""
    runs = {}
    for name, tricks in (("plain", others), ("unrolled", [*others, ("unrolled", {"k": 2})])):
        tr = tiny_trainer("ring8", tricks, steps=2, seed=5)
        tr.train_step()
        d1 = {k: p.detach().clone() for k, p in tr.nets.D.named_parameters()}
        tr.train_step()
        runs[name] = (d1, weights(tr.nets.G), torch.randn(3))
    (d_p, g_p, r_p), (d_u, g_u, r_u) = runs.values()
    assert all(torch.equal(v, d_u[k]) for k, v in d_p.items())
    assert any(not torch.equal(g_p[k], g_u[k]) for k in g_p)
    assert all(torch.isfinite(v).all() for v in g_u.values())
    assert torch.equal(r_p, r_u)


def test_second_order_on_images_with_minibatch_discrimination():
    tr = tiny_trainer("digits", ["minibatch_discrimination", ("unrolled", {"k": 2})], steps=2)
    tr.train_step()
    tr.train_step()
    assert all(torch.isfinite(v).all() for v in weights(tr.nets.G).values())


_MEMORY_SCRIPT = """
import dataclasses, resource, sys, torch
from bench.data.base import Dataset
from bench.train import Trainer
from tests.tiny import tiny_cell
torch.set_num_threads(1)
x = torch.rand(256, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
ds = Dataset(name="cifar10", kind="image", shape=(3, 32, 32), train=x, test=x[:64],
             train_labels=None, test_labels=None, num_classes=None, num_modes=10)
tricks = [] if sys.argv[1] == "plain" else [("unrolled", {"k": 5})]
cell = tiny_cell("cifar10", tricks, steps=2, batch_size=64, width=64, z_dim=100)
cell = dataclasses.replace(cell, data=dataclasses.replace(cell.data, resolution=32))
tr = Trainer(cell, device="cpu", progress=False, dataset=ds)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tr.train_step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


@pytest.mark.slow
def test_second_order_k5_memory_on_a_32px_cell():
    """32 px DCGAN (width 64, batch 64), one step, peak RSS growth in a fresh process. Measured
    (CPU, under load): plain ~100 MiB, second order k=5 ~480 MiB; bound: 4x plain + 1 GiB."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]

    def grow(mode):
        out = subprocess.run([sys.executable, "-c", _MEMORY_SCRIPT, mode], cwd=root, check=True,
                             capture_output=True, text=True,
                             env={**os.environ, "PYTHONPATH": str(root)})
        return float(out.stdout.strip().splitlines()[-1])

    plain, unrolled = grow("plain"), grow("unrolled")
    assert unrolled < 4 * plain + 1024, (plain, unrolled)


def test_second_order_in_the_trainer_equals_finite_differences():
    """The same check through the trainer's own D loss (d_input, targets, penalties hooks) on a
    ring8 cell in float64, a few steps in: G's gradient against the second-order critic equals
    finite differences of G's loss against D after k real Adam steps."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        tr = tiny_trainer("ring8", [("unrolled", {"k": 3})], steps=5, lr=1e-2)
        draw = tr.stream.next

        def as_double():
            batch = draw()
            return (batch[0].double(), *batch[1:]) if isinstance(batch, tuple) else batch.double()

        tr.stream.next = as_double
        tr.train_step()
        tr.train_step()
        trick, seen = tr.tricks[0], {}
        second = trick.g_critic
        first = create_trick("unrolled", k=3, first_order=True)

        def spy(ctx):
            critic = second(ctx)
            p = next(ctx.nets.G.parameters())
            (grad,) = torch.autograd.grad(_g_loss(critic, ctx.fake), [p], retain_graph=True)

            def f():
                unrolled = first.g_critic(ctx)
                with torch.no_grad():
                    return _g_loss(unrolled, ctx.nets.G(ctx.z)).item()

            h, flat, fd = 1e-6, p.data.view(-1), []
            for i in range(8):
                old = flat[i].item()
                flat[i] = old + h
                up = f()
                flat[i] = old - h
                down = f()
                flat[i] = old
                fd.append((up - down) / (2 * h))
            seen["grad"], seen["fd"] = grad.view(-1)[:8], torch.tensor(fd)
            return critic

        trick.g_critic = spy
        tr.train_step()
        assert seen["grad"].abs().max() > 0
        assert torch.allclose(seen["grad"], seen["fd"], rtol=1e-4, atol=1e-10), seen
    finally:
        torch.set_default_dtype(previous)


# -- g_objective = "value" (Metz et al.; the reference notebook's -unrolled_loss) --------------
def _value_terms(trick, G, D, opt, real, z):
    ctx = _ctx(G, D, opt, real, z)
    ctx.critic = trick.g_critic(ctx)
    ctx.fake_in = ctx.fake
    ctx.d_fake = ctx.critic(ctx.fake_in)
    return trick.penalty(ctx), ctx


def test_value_objective_gradient_equals_finite_differences_of_the_game_value():
    """G's gradient is d/dtheta_G of E log D_k(x) + E log(1 - D_k(G(z))) with D_k after k Adam
    steps: the real term counts (D_k depends on theta_G), unlike the minimax G loss alone."""
    G, D, opt, real, z = _problem(1)
    k = 2
    trick = create_trick("unrolled", k=k, g_objective="value")
    terms, ctx = _value_terms(trick, G, D, opt, real, z)
    assert set(terms) == {"value"} and trick.adversarial_weight("g") == 0.0
    assert trick.adversarial_weight("d") == 1.0 and trick.penalty(
        StepContext(phase="d", step=0, steps=1, nets=None, critic=D, real=real, z=z,
                    fake=None, real_in=real)) == {}
    grads = torch.autograd.grad(terms["value"], list(G.parameters()), retain_graph=True)
    first = create_trick("unrolled", k=k, first_order=True)

    def f():  # the value at D after k real torch.optim.Adam steps on a copy
        critic = first.g_critic(_ctx(G, D, opt, real, z))
        with torch.no_grad():
            return -(F.softplus(-critic(real)).mean() + F.softplus(critic(G(z))).mean()).item()

    h = 1e-6
    for p, grad in zip(G.parameters(), grads):
        fd = torch.zeros_like(p)
        for i in range(p.numel()):
            flat = p.data.view(-1)
            old = flat[i].item()
            flat[i] = old + h
            up = f()
            flat[i] = old - h
            down = f()
            flat[i] = old
            fd.view(-1)[i] = (up - down) / (2 * h)
        assert torch.allclose(grad, fd, rtol=1e-5, atol=1e-8), (grad, fd)
    fake_only = -F.softplus(ctx.critic(ctx.fake)).mean()  # the minimax G loss against D_k
    minimax = torch.autograd.grad(fake_only, list(G.parameters()))
    assert not all(torch.allclose(a, b) for a, b in zip(grads, minimax))


def test_value_objective_claims_the_loss_slot_and_keeps_existing_ids():
    from bench.schedule.grid import full_spec
    from bench.trickapi.registry import conflict_reasons
    from bench.trickapi.trick import slots_of

    assert slots_of(create_trick("unrolled")) == ("g_critic",)
    assert "adversarial_loss" in slots_of(create_trick("unrolled", g_objective="value"))
    assert conflict_reasons([create_trick("unrolled", g_objective="value"),
                             create_trick("wgan_gp")])
    assert not conflict_reasons([create_trick("unrolled"), create_trick("wgan_gp")])
    assert "g_objective" not in full_spec("unrolled").param_dict
    assert full_spec("unrolled", {"g_objective": "value"}).version == full_spec("unrolled").version


def test_value_objective_in_the_trainer():
    tr = tiny_trainer("ring8", [("unrolled", {"k": 2, "g_objective": "value"})], steps=2)
    assert tr.train() == ("done", "")
    assert "g_value" in tr.curves and "g_adv" not in tr.curves and "d_adv" in tr.curves
