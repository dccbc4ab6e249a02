"""Mechanism tests for the loss, penalty, label and optimizer/schedule tricks."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bench.nets import Generator, Synthesis
from bench.trickapi.registry import conflict_reasons, create_trick
from bench.trickapi.trick import Nets, StepContext
from tests.tiny import tiny_trainer, weights


# -- helpers ---------------------------------------------------------------------------------------
def make_ctx(phase="d", *, step=0, critic=None, nets=None, real=None, fake=None, z=None,
             d_real=None, d_fake=None, real_in=None, fake_in=None):
    real = torch.zeros(4, 2) if real is None else real
    fake = torch.zeros(4, 2) if fake is None else fake
    return StepContext(phase=phase, step=step, steps=100, nets=nets, critic=critic,
                       real=real, z=torch.zeros(4, 2) if z is None else z, fake=fake,
                       real_in=real if real_in is None else real_in,
                       fake_in=fake if fake_in is None else fake_in,
                       d_real=d_real, d_fake=d_fake)


class Linear(nn.Module):
    """D(x) = w . x + b, returning [B] logits; has `features` for feature matching."""

    def __init__(self, w):
        super().__init__()
        self.w = nn.Parameter(torch.as_tensor(w, dtype=torch.float32))
        self.b = nn.Parameter(torch.tensor(0.3))

    def features(self, x):
        return x.flatten(1) * 2.0

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


def constant_d(x):
    return (x * 0).flatten(1).sum(1) + 3.0


W = [0.6, -1.7]  # ||W||^2 = 3.25
W_SQ = 0.36 + 2.89


# -- relativistic ----------------------------------------------------------------------------------
def test_relativistic_pairing_loss_matches_formula():
    t = create_trick("relativistic")
    dr, df = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([0.0, 1.0, 3.0])
    d = t.adversarial_loss(make_ctx("d", d_real=dr, d_fake=df))
    g = t.adversarial_loss(make_ctx("g", d_real=dr, d_fake=df))
    assert d.item() == pytest.approx(torch.log1p(torch.exp(-(dr - df))).mean().item(), rel=1e-6)
    assert g.item() == pytest.approx(torch.log1p(torch.exp(-(df - dr))).mean().item(), rel=1e-6)


def test_relativistic_average_loss_matches_formula():
    t = create_trick("relativistic", variant="average")
    dr, df = torch.tensor([2.0, -1.0, 0.5, 1.0]), torch.tensor([0.0, 1.0, 3.0, -2.0])
    mr, mf = dr.mean(), df.mean()

    def sig(x):
        return torch.sigmoid(x)

    want_d = -(torch.log(sig(dr - mf)).mean() + torch.log(1 - sig(df - mr)).mean())
    want_g = -(torch.log(sig(df - mr)).mean() + torch.log(1 - sig(dr - mf)).mean())
    assert t.adversarial_loss(make_ctx("d", d_real=dr, d_fake=df)).item() == pytest.approx(want_d.item(), rel=1e-6)
    assert t.adversarial_loss(make_ctx("g", d_real=dr, d_fake=df)).item() == pytest.approx(want_g.item(), rel=1e-6)


def test_relativistic_g_loss_reads_d_real_lazily_from_the_critic():
    D = Linear(W)
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    ctx = make_ctx("g", critic=D, real=real, real_in=lambda: real * 2, fake_in=fake,
                   d_fake=D(fake))
    loss = create_trick("relativistic").adversarial_loss(ctx)
    want = F.softplus(-(D(fake) - D(real * 2))).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-6)


def test_relativistic_r1_r2_are_zero_for_constant_d_and_half_gamma_w2_for_linear_d():
    t = create_trick("relativistic", gamma=0.4)
    real, fake = torch.randn(6, 2), torch.randn(6, 2)
    const = t.penalty(make_ctx("d", critic=constant_d, real=real, fake=fake))
    assert const["r1"].item() == 0.0 and const["r2"].item() == 0.0
    lin = t.penalty(make_ctx("d", critic=Linear(W), real=real, fake=fake))
    assert lin["r1"].item() == pytest.approx(0.2 * W_SQ, rel=1e-6)
    assert lin["r2"].item() == pytest.approx(0.2 * W_SQ, rel=1e-6)
    assert t.penalty(make_ctx("g", critic=Linear(W))) == {}
    assert create_trick("relativistic", gamma=0).penalty(make_ctx("d", critic=Linear(W))) == {}


def test_relativistic_trains_images_and_excludes_label_tricks():
    tr = tiny_trainer("digits", [("relativistic", {"variant": "average"})], steps=2, batch_size=8)
    assert tr.train() == ("done", "")
    assert {"d_adv", "d_r1", "d_r2", "g_adv"} <= set(tr.curves)
    for other in ("label_smoothing", "one_sided_label_smoothing", "label_flip"):
        reasons = conflict_reasons([create_trick("relativistic"), create_trick(other)])
        assert len(reasons) == 1 and "no targets" in reasons[0]


# -- gradient_penalty ------------------------------------------------------------------------------
def test_r1_on_linear_d_is_half_gamma_w2():
    t = create_trick("gradient_penalty")
    out = t.penalty(make_ctx("d", critic=Linear(W), real=torch.randn(8, 2)))
    assert list(out) == ["r1"] and out["r1"].item() == pytest.approx(5.0 * W_SQ, rel=1e-6)
    assert create_trick("gradient_penalty").penalty(make_ctx("g", critic=Linear(W))) == {}


def test_r1_penalty_uses_d_inputs_and_trains_only_d():
    D = Linear(W)
    real = torch.randn(8, 2, requires_grad=True)
    out = create_trick("gradient_penalty").penalty(make_ctx("d", critic=D, real=real))
    out["r1"].backward()
    assert real.grad is None  # the real batch is detached
    assert torch.allclose(D.w.grad, 10.0 * D.w.detach())  # d/dw (gamma/2)||w||^2 = gamma w


def test_dragan_penalises_unit_norm_gap_near_real_points():
    from tricks.gradient_penalty import dragan_points

    torch.manual_seed(0)
    x = torch.randn(256, 2)
    pts = dragan_points(x, 0.5)
    delta = pts.detach() - x
    assert pts.requires_grad and delta.min() >= 0 and delta.max() <= 0.5 * x.std() + 1e-6
    t = create_trick("gradient_penalty", variant="dragan", weight=3.0)
    out = t.penalty(make_ctx("d", critic=Linear(W), real=x))
    assert list(out) == ["dragan"]
    assert out["dragan"].item() == pytest.approx(3.0 * (math.sqrt(W_SQ) - 1) ** 2, rel=1e-5)


# -- path_length -----------------------------------------------------------------------------------
def scaled_identity_g(k: int, c: float, mapping_scale: float | None = None) -> Generator:
    """G(z) = c * mapping(z) with outputs of dim k, so ||J_w^T y|| = c ||y|| ~= c for large k."""
    out = nn.Linear(k, k, bias=False)
    with torch.no_grad():
        out.weight.copy_(c * torch.eye(k))
    G = Generator(Synthesis([], out), k, (k,))
    if mapping_scale is not None:
        G.mapping = nn.Linear(k, k, bias=False)
        with torch.no_grad():
            G.mapping.weight.copy_(mapping_scale * torch.eye(k))
    return G


def pl_ctx(G, step=0, batch=64):
    return make_ctx("g", step=step, nets=Nets(G, None), z=torch.zeros(batch, G.z_dim))


def test_path_length_running_mean_converges_to_the_jacobian_norm_wrt_w():
    torch.manual_seed(0)
    c, n = 1.5, 300
    G = scaled_identity_g(256, c, mapping_scale=10.0)  # w = 10 z: the norm is taken wrt w, not z
    t = create_trick("path_length", interval=1)
    for _ in range(n):
        t.penalty(pl_ctx(G))
    # E||y|| = 1 - O(1/k) for y ~ N(0, I/k); a 10x larger value would mean the norm wrt z
    assert t.state_dict()["mean"] == pytest.approx(c * (1 - 0.99 ** n), rel=5e-3)


class PerLayerSynthesis(nn.Module):
    """StyleGAN-like synthesis of per-layer ws [B, 2, k]: image = c * (ws[:, 0] + ws[:, 1])."""

    def __init__(self, c):
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, ws):
        return self.c * ws.sum(1)


class PerLayerG(nn.Module):
    def __init__(self, k, c):
        super().__init__()
        self.mapping, self.synthesis, self.z_dim = nn.Identity(), PerLayerSynthesis(c), k

    def forward(self, z):
        return self.synthesis(self.mapping(z).unsqueeze(1).repeat(1, 2, 1))


def test_path_length_averages_per_layer_ws_over_layers_like_stylegan2():
    torch.manual_seed(0)
    t = create_trick("path_length", interval=1, decay=1.0)  # decay 1: a = this batch's mean length
    t.penalty(pl_ctx(PerLayerG(1024, 1.5), batch=128))
    assert t.state_dict()["mean"] == pytest.approx(1.5, rel=5e-3)  # a sum over layers: 1.5 * sqrt(2)


def test_path_length_penalty_is_zero_when_the_norm_equals_the_mean():
    k, c = 16, 0.7
    G = scaled_identity_g(k, c)
    t = create_trick("path_length", interval=4, batch_shrink=2)
    # replicate the trick's draws for a batch of one: z, then y ~ N(0, I) / sqrt(k)
    torch.manual_seed(3)
    torch.randn(1, k)
    y = torch.randn(1, k) / math.sqrt(k)
    length = (c * y).norm().item()
    t.load_state_dict({"mean": length})
    torch.manual_seed(3)
    out = t.lazy_penalty(pl_ctx(G, step=8, batch=1))
    assert out["pl"].item() == pytest.approx(0.0, abs=1e-10)
    assert t.state_dict()["mean"] == pytest.approx(length, rel=1e-6)
    # lazy (interval 4): nothing in the main G loss; a mean of 0 gives weight * decayed gap
    # (the loop multiplies the lazy update's loss by the interval: tests/test_lazy_reg.py)
    assert t.penalty(pl_ctx(G, step=8, batch=1)) == {}
    t.load_state_dict({"mean": 0.0})
    torch.manual_seed(3)
    out = t.lazy_penalty(pl_ctx(G, step=0, batch=1))
    assert out["pl"].item() == pytest.approx(2.0 * (0.99 * length) ** 2, rel=1e-5)


def test_path_length_trains_dcgan_g_through_its_reshape():
    tr = tiny_trainer("digits", [("path_length", {"interval": 2})], steps=3, batch_size=8)
    assert tr.train() == ("done", "")
    assert [s for s, _ in tr.curves["g_pl"]] == [1, 3]  # steps 0 and 2 (logged as step + 1)
    assert tr.tricks[0].state_dict()["mean"] > 0


# -- feature_matching ------------------------------------------------------------------------------
def test_feature_matching_replace_zeroes_g_adversarial_weight_and_matches_means():
    rep, add = create_trick("feature_matching"), create_trick("feature_matching", mode="add", weight=0.5)
    assert (rep.adversarial_weight("g"), rep.adversarial_weight("d")) == (0.0, 1.0)
    assert (add.adversarial_weight("g"), add.adversarial_weight("d")) == (1.0, 1.0)
    D = Linear(W)
    x = torch.randn(6, 2)
    assert rep.penalty(make_ctx("g", critic=D, real=x, fake=x.clone()))["fm"].item() == 0.0
    real = torch.randn(6, 2, requires_grad=True)
    fake = torch.randn(6, 2, requires_grad=True)
    out = add.penalty(make_ctx("g", critic=D, real=real, fake=fake))
    want = 0.5 * ((2 * real.detach()).mean(0) - (2 * fake.detach()).mean(0)).square().sum()
    assert out["fm"].item() == pytest.approx(want.item(), rel=1e-6)
    out["fm"].backward()
    assert real.grad is None and fake.grad is not None  # real features are detached
    assert rep.penalty(make_ctx("d", critic=D)) == {}


def test_feature_matching_replace_in_a_trainer_drops_the_adversarial_g_loss():
    tr = tiny_trainer("ring8", ["feature_matching"], steps=2)
    tr.train()
    assert "g_adv" not in tr.curves and "g_fm" in tr.curves and "d_adv" in tr.curves


# -- weight_penalty --------------------------------------------------------------------------------
def test_weight_penalty_is_lambda_sum_of_squared_weights():
    D = tiny_trainer("ring8").nets.D
    ws = [p for p in D.parameters() if p.dim() > 1]
    assert 0 < len(ws) < len(list(D.parameters()))  # biases are left out
    out = create_trick("weight_penalty").penalty(make_ctx("d", critic=D))
    assert out["l2"].item() == pytest.approx(0.001 * sum(p.square().sum().item() for p in ws), rel=1e-6)
    all_p = create_trick("weight_penalty", lam=1.0, include_biases=True).penalty(make_ctx("d", critic=D))
    assert all_p["l2"].item() == pytest.approx(sum(p.square().sum().item() for p in D.parameters()), rel=1e-6)
    assert create_trick("weight_penalty").penalty(make_ctx("g", critic=D)) == {}


# -- historical_averaging --------------------------------------------------------------------------
def test_historical_averaging_is_zero_first_then_distance_from_the_past_mean():
    t = create_trick("historical_averaging", weight=2.0)
    D = Linear(W)
    theta0 = weights(D)
    assert t.penalty(make_ctx("d", critic=D, nets=Nets(None, D)))["hist"].item() == 0.0
    with torch.no_grad():
        D.w.add_(torch.tensor([1.0, 2.0]))
    out = t.penalty(make_ctx("d", critic=D, nets=Nets(None, D)))["hist"]
    assert out.item() == pytest.approx(2.0 * 5.0, rel=1e-6)  # 2 * ||(1, 2)||^2
    theta1 = weights(D)
    with torch.no_grad():
        D.w.add_(torch.tensor([1.0, 0.0]))
    # the mean is now (theta0 + theta1) / 2 = theta2 - (1.5, 1); an unrolled copy does not add to it
    copy = Linear(W)
    copy.load_state_dict(weights(D))
    state = t.state_dict()
    assert t.penalty(make_ctx("d", critic=copy, nets=Nets(None, D)))["hist"].item() == pytest.approx(2.0 * 3.25)
    assert t.state_dict()["D"]["count"] == state["D"]["count"] == 2
    assert torch.allclose(state["D"]["mean"]["w"], (theta0["w"] + theta1["w"]) / 2)
    assert t.penalty(make_ctx("d", critic=D, nets=Nets(None, D)))["hist"].item() == pytest.approx(2.0 * 3.25)
    assert t.state_dict()["G"]["count"] == 0  # G's mean only moves in the G phase


def test_tricks_with_state_resume_exactly(tmp_path):
    spec = [("historical_averaging", {}), ("path_length", {"interval": 1})]
    straight = tiny_trainer("ring8", spec, steps=4)
    straight.train()
    first = tiny_trainer("ring8", spec, steps=4, workdir=tmp_path, checkpoint_every=2)
    assert first.train(stop_after=2)[0] == "interrupted"
    resumed = tiny_trainer("ring8", spec, steps=4, workdir=tmp_path, checkpoint_every=2)
    assert resumed.try_resume() and resumed.step == 2
    resumed.train()
    for a, b in ((straight.nets.G, resumed.nets.G), (straight.nets.D, resumed.nets.D)):
        assert all(torch.equal(x, y) for x, y in zip(weights(a).values(), weights(b).values()))
    assert resumed.tricks[1].state_dict() == straight.tricks[1].state_dict()


# -- label_flip ------------------------------------------------------------------------------------
def test_label_flip_swaps_a_seeded_fraction_of_targets():
    n = 200_000
    t = create_trick("label_flip")
    torch.manual_seed(7)
    real_t, fake_t = t.targets(torch.ones(n), torch.zeros(n), 0)
    torch.manual_seed(7)
    want_r, want_f = (torch.rand(n) < 0.05).sum().item(), (torch.rand(n) < 0.05).sum().item()
    assert set(real_t.unique().tolist()) <= {0.0, 1.0} and set(fake_t.unique().tolist()) <= {0.0, 1.0}
    assert (real_t == 0).sum().item() == want_r and (fake_t == 1).sum().item() == want_f
    assert abs(want_r / n - 0.05) < 0.002 and abs(want_f / n - 0.05) < 0.002


def test_label_flip_runs_before_label_smoothing_in_the_chain():
    tr = tiny_trainer("ring8", ["label_smoothing", ("label_flip", {"fraction": 0.5})], steps=1)
    assert [t.name for t in tr.tricks] == ["label_flip", "label_smoothing"]
    torch.manual_seed(0)
    real_t, fake_t = torch.ones(1000), torch.zeros(1000)
    for t in tr.tricks:  # the loop's targets chain
        real_t, fake_t = t.targets(real_t, fake_t, 0)
    for t in (real_t, fake_t):
        assert sorted(t.unique().tolist()) == pytest.approx([0.1, 0.9])
    assert 400 < (real_t < 0.5).sum().item() < 600


# -- ttur and schedules ----------------------------------------------------------------------------
def test_ttur_sets_the_trainers_learning_rates_and_keeps_betas():
    tr = tiny_trainer("ring8", ["ttur"], steps=1)  # the cell's lr 2e-4: D keeps it, G / 4
    tr.train_step()
    assert tr.d_opt.param_groups[0]["lr"] == 2e-4 and tr.g_opt.param_groups[0]["lr"] == 5e-5
    assert tr.d_opt.param_groups[0]["betas"] == (0.5, 0.999) == tr.g_opt.param_groups[0]["betas"]
    assert "both claim the 'optimizer' slot" in conflict_reasons(
        [create_trick("ttur"), create_trick("wgan_gp")])[0]


def built(name, steps, **params):
    tr = tiny_trainer("ring8", [(name, params)], steps=steps)
    return tr, tr.tricks[0]


def test_warmup_schedule_values():
    _, t = built("lr_warmup", 200)  # 5% of 200 = 10 warm-up steps
    assert [t.lr_scale(s, "G") for s in (0, 4, 9, 10, 150)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    _, t = built("lr_warmup", 200, warmup_steps=4)
    assert [t.lr_scale(s, "D") for s in (0, 1, 3, 50)] == [0.25, 0.5, 1.0, 1.0]


def test_step_decay_schedule_values():
    _, t = built("lr_step_decay", 100)
    got = [t.lr_scale(s, "G") for s in (0, 49, 50, 74, 75, 99)]
    assert got == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    _, t = built("lr_step_decay", 100, every=10, gamma=0.5)
    assert [t.lr_scale(s, "D") for s in (0, 9, 10, 25)] == [1, 1, 0.5, 0.25]


def test_cyclic_schedule_values():
    _, t = built("lr_cyclic", 80)  # 4 cycles over 80 steps: half cycle of 10 steps
    got = [t.lr_scale(s, "G") for s in (0, 5, 10, 15, 20, 30, 79)]
    assert got == pytest.approx([0.25, 0.625, 1.0, 0.625, 0.25, 1.0, 0.325])
    _, t = built("lr_cyclic", 80, step_size=2, low=0.5, high=2.0)
    assert [t.lr_scale(s, "G") for s in (0, 1, 2, 3, 4)] == pytest.approx([0.5, 1.25, 2.0, 1.25, 0.5])


@pytest.mark.parametrize("name, params", [
    ("lr_warmup", {}), ("lr_step_decay", {"every": 2}), ("lr_cyclic", {})])
def test_schedule_sets_optimizer_lr_to_base_times_scale(name, params):
    tr, t = built(name, 100, **params)
    for _ in range(5):
        tr.train_step()
        s = tr.step - 1  # the LR of the step that just ran
        for opt in (tr.g_opt, tr.d_opt):
            assert opt.param_groups[0]["lr"] == pytest.approx(2e-4 * t.lr_scale(s, "G"))
    assert any(t.lr_scale(s, "G") != 1.0 for s in range(5))


def test_path_length_backward_is_finite_when_g_ignores_z_for_some_samples():
    """Regression: ring8 cells diverged when a sample's ReLUs were all dead (J = 0)."""
    import torch
    from torch import nn

    class DeadForNegative(nn.Module):
        synthesis = None

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, z):
            return torch.relu(self.lin(z)) * (z[:, :1] > 0)  # zero output and zero J for half

    G = DeadForNegative()
    torch.manual_seed(0)
    ctx = make_ctx("g", nets=type("N", (), {"G": G})(), z=torch.zeros(64, 2))
    create_trick("path_length", interval=1).penalty(ctx)["pl"].backward()
    assert all(torch.isfinite(p.grad).all() for p in G.parameters())
