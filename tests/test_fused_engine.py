"""The fused engine (bench/train/fused): a cell trained as one of K fused cells equals the same
cell trained alone by the Trainer (every parameter after 50 steps, its loss curves, its stream)
for the baseline and every supported trick; per-cell learning rates, divergence of one cell,
checkpoints that resume across engines, records; and the tricks and groups it refuses."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from bench.core.config import CellConfig, DataConfig, NetConfig, OptimConfig, TrainConfig
from bench.data import load_dataset
from bench.schedule.grid import full_spec
from bench.train import Trainer
from bench.train.fused import CellStreams, FusedTrainer, NotFusable, group_refusal
from bench.train.fused.adam import StackedAdam
from tests.tiny import tiny_cell

STEPS = 50
LRS = (2e-4, 1e-3)  # one group, a learning rate per cell


@pytest.fixture
def float64():
    """Rounding differences between a bmm and a per-cell addmm are ~1e-16 in float64, so what
    is compared is the computation, not float32 noise that Adam amplifies where a gradient is a
    near-cancellation (see the engine's docstring)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


def ring8(dtype=None):
    ds = load_dataset("ring8")
    if dtype is None or dtype == ds.train.dtype:
        return ds
    return dataclasses.replace(ds, train=ds.train.to(dtype), test=ds.test.to(dtype))


def cells_for(tricks, *, steps=STEPS, seeds=(0, 1), **kw):
    return [tiny_cell("ring8", tricks, steps=steps, seed=s, lr=lr, log_every=7, **kw)
            for s, lr in zip(seeds, LRS)]


def build(cells, data, workdirs=None):
    """Trainers built (and resumed) one by one, each cell's RNG state captured right after."""
    trainers, states = [], []
    for i, cell in enumerate(cells):
        tr = Trainer(cell, device="cpu", progress=False, dataset=data,
                     workdir=workdirs[i] if workdirs else None)
        tr.try_resume()
        trainers.append(tr)
        states.append(CellStreams.capture())
    return trainers, states


def alone(cell, data, stop_after=None, workdir=None):
    tr = Trainer(cell, device="cpu", progress=False, dataset=data, workdir=workdir)
    tr.try_resume()
    return tr, tr.train(stop_after=stop_after)


def assert_same_params(ref, fused, rtol=1e-5, skip=()):
    for net in ("G", "D"):
        a, b = getattr(ref.nets, net).state_dict(), getattr(fused.nets, net).state_dict()
        assert a.keys() == b.keys()
        for name in a:
            if name in skip:
                continue
            x, y = a[name].double(), b[name].double()
            err = ((x - y).abs() / x.abs().clamp_min(1e-12)).max().item()
            assert err <= rtol, f"{net}.{name}: relative difference {err:.3g}"


def assert_fused_equals_alone(cells, data, trainers, states):
    """Train `trainers` fused to the end; each then equals its cell trained alone."""
    assert FusedTrainer(trainers, states).train() == [("done", "")] * len(cells)
    for cell, fused in zip(cells, trainers):
        ref, _ = alone(cell, data)
        assert_same_params(ref, fused)
        assert_same_curves(ref, fused)


def assert_stacked_forward_equals_each(stacked, mods, x, where):
    """In train mode (batch statistics) and eval mode (running ones) the stacked net's output k
    equals module k's on x[k], and every running statistic moved alike."""
    for training in (True, False):
        stacked.training = training
        for m in mods:
            m.train(training)
        got = stacked(x)
        for k, m in enumerate(mods):
            assert torch.allclose(got[k], m(x[k]), rtol=1e-10, atol=1e-12), (where, training)
    for k, m in enumerate(mods):
        for bname, buf in m.named_buffers():
            assert torch.allclose(stacked.buffers[bname][k].to(buf.dtype), buf), bname


def assert_same_curves(ref, fused, rtol=1e-9):
    assert ref.curves.keys() == fused.curves.keys()
    for name, points in ref.curves.items():
        got = fused.curves[name]
        assert [p[0] for p in points] == [p[0] for p in got], name
        for (_, x), (_, y) in zip(points, got):
            assert abs(x - y) <= rtol * max(abs(x), 1e-12), f"{name}: {x} vs {y}"


TRICKS = [
    pytest.param((), id="baseline"),
    pytest.param(("label_smoothing",), id="label_smoothing"),
    pytest.param(("one_sided_label_smoothing",), id="one_sided_label_smoothing"),
    pytest.param(("instance_noise",), id="instance_noise"),
    pytest.param((("instance_noise", {"fraction": 0.5}),), id="instance_noise-fraction"),
    pytest.param(("minibatch_stddev",), id="minibatch_stddev"),
    # n_critic 2 instead of 5 keeps the test short; the critic loop is the same
    pytest.param((("wgan_gp", {"n_critic": 2}),), id="wgan_gp"),
    pytest.param((("wgan_gp", {"n_critic": 2, "optimizer": "cell"}),), id="wgan_gp-cell-lr"),
    pytest.param(("gradient_penalty",), id="gradient_penalty-r1"),
    pytest.param((("gradient_penalty", {"variant": "dragan"}),), id="gradient_penalty-dragan"),
    pytest.param(("ttur",), id="ttur"),
    pytest.param(("lr_warmup",), id="lr_warmup"),
    pytest.param(("lr_step_decay",), id="lr_step_decay"),
    pytest.param(("lr_cyclic",), id="lr_cyclic"),
    pytest.param((("unrolled", {"k": 2}),), id="unrolled-second-order"),
    pytest.param((("unrolled", {"k": 2, "first_order": True}),), id="unrolled-first-order"),
    # Metz et al.'s G objective, the game's value at the unrolled D (paper-2d's unrolled cells)
    pytest.param((("unrolled", {"k": 2, "g_objective": "value"}),), id="unrolled-value"),
    pytest.param((("unrolled", {"k": 2, "g_objective": "value", "first_order": True}),),
                 id="unrolled-value-first-order"),
    pytest.param(("instance_noise", ("unrolled", {"k": 2, "g_objective": "value"})),
                 id="noise+unrolled-value"),
    pytest.param(("instance_noise", "minibatch_stddev", ("wgan_gp", {"n_critic": 2})),
                 id="noise+mbstd+wgan_gp"),
    # D2GAN (paper-2d): D is a pair of Ds, the loss its own, alpha and beta per cell
    pytest.param(("dual_discriminator",), id="dual_discriminator"),
    pytest.param((("dual_discriminator", {"alpha": 0.5, "beta": 0.3}), ("unrolled", {"k": 2})),
                 id="dual_discriminator+unrolled"),
]


@pytest.mark.parametrize("tricks", TRICKS)
def test_a_fused_cell_equals_the_cell_trained_alone(tricks, float64):
    data = ring8(torch.float64)
    cells = cells_for(tricks)
    trainers, states = build(cells, data)
    results = FusedTrainer(trainers, states).train()
    assert results == [("done", "")] * len(cells)
    for cell, fused in zip(cells, trainers):
        ref, result = alone(cell, data)
        assert result == ("done", "")
        assert fused.step == ref.step == STEPS
        assert fused.stream.state_dict() == ref.stream.state_dict()
        assert_same_params(ref, fused)
        assert_same_curves(ref, fused)


@pytest.mark.parametrize("trick,key,values", [
    ("label_smoothing", "real", (0.9, 0.7)),
    ("dual_discriminator", "alpha", (0.2, 0.5)),
    ("wgan_gp", "gp_weight", (10.0, 1.0)),
    ("instance_noise", "sigma", (0.1, 0.3)),
])
def test_params_read_per_cell_may_differ_within_a_group(trick, key, values, float64):
    """PER_CELL_PARAMS (bench/train/fused/tricks.py): cells that differ in these params share
    a group (bench/schedule/fused/plan.py), each trained with its own value."""
    from bench.train.fused.tricks import PER_CELL_PARAMS

    assert key in PER_CELL_PARAMS[trick] or "*" in PER_CELL_PARAMS[trick]
    data = ring8(torch.float64)
    extra = {"n_critic": 2} if trick == "wgan_gp" else {}
    cells = [tiny_cell("ring8", [(trick, {key: v, **extra})], steps=20, seed=s, lr=lr,
                       log_every=5) for s, v, lr in zip((0, 1), values, LRS)]
    trainers, states = build(cells, data)
    assert_fused_equals_alone(cells, data, trainers, states)


def digits(dtype=None):
    ds = load_dataset("digits")
    if dtype is None or dtype == ds.train.dtype:
        return ds
    return dataclasses.replace(ds, train=ds.train.to(dtype), test=ds.test.to(dtype))


IMAGE_STEPS = STEPS
IMAGE_TRICKS = [
    pytest.param((), id="baseline"),
    pytest.param(("batch_norm",), id="batch_norm"),
    pytest.param(("label_smoothing",), id="label_smoothing"),
    pytest.param((("instance_noise", {"fraction": 0.5}),), id="instance_noise-fraction"),
    pytest.param(("minibatch_stddev",), id="minibatch_stddev"),
    pytest.param((("wgan_gp", {"n_critic": 2}),), id="wgan_gp"),
    pytest.param(("gradient_penalty",), id="gradient_penalty-r1"),
    pytest.param((("gradient_penalty", {"variant": "dragan"}),), id="gradient_penalty-dragan"),
    pytest.param((("unrolled", {"k": 2}),), id="unrolled-second-order"),
    pytest.param((("unrolled", {"k": 2, "g_objective": "value"}),), id="unrolled-value"),
    pytest.param(("packing", "ttur"), id="packing+ttur"),
    pytest.param(("dual_discriminator",), id="dual_discriminator"),
]


@pytest.mark.parametrize("tricks", IMAGE_TRICKS)
def test_a_fused_image_cell_equals_the_cell_trained_alone(tricks, float64):
    """DCGAN-style conv nets (digits 16x16): a conv layer of K models is one grouped
    convolution, 2-D batch norm keeps per-model batch and running statistics."""
    data = digits(torch.float64)
    cells = [tiny_cell("digits", tricks, steps=IMAGE_STEPS, seed=s, lr=lr, log_every=3)
             for s, lr in zip((0, 1), LRS)]
    trainers, states = build(cells, data)
    assert FusedTrainer(trainers, states).train() == [("done", "")] * 2
    for cell, fused in zip(cells, trainers):
        ref, result = alone(cell, data)
        assert result == ("done", "") and fused.step == ref.step == IMAGE_STEPS
        assert fused.stream.state_dict() == ref.stream.state_dict()
        assert_same_params(ref, fused)
        assert_same_curves(ref, fused, rtol=1e-7)


def assert_same_params_to_scale(ref, fused, tol):
    """Every parameter within `tol` of its tensor's largest entry (near-zero entries carry
    noise)."""
    for net in ("G", "D"):
        a, b = getattr(ref.nets, net).state_dict(), getattr(fused.nets, net).state_dict()
        for name in a:
            x, y = a[name].double(), b[name].double()
            err = ((x - y).abs().max() / x.abs().max().clamp_min(1e-300)).item()
            assert err <= tol, f"{net}.{name}: {err:.3g} of its scale"


@pytest.mark.parametrize("tricks,data_name", [
    (("minibatch_discrimination",), "ring8"),
    (("minibatch_discrimination",), "digits"),
])
def test_minibatch_discrimination_fused_equals_alone_to_float64_noise(tricks, data_name,
                                                                       float64):
    """Its data-dependent init on the first batch runs per model, and the closeness sums go
    through the trick's own kernels with the K models' kernels side by side. Those sums are
    tiled by the kernel count, so they add in another order than the cell alone's (1e-16),
    and the L1 distance's sign at near-equal features turns that into ~1e-10 after one step,
    which Adam grows (how far varies with the run's thread count and tiling): after 50 steps
    every parameter is within 1e-5 of its tensor's scale, where the other tricks stay within
    1e-5 of each entry, and the curves within 1e-5."""
    data = ring8(torch.float64) if data_name == "ring8" else digits(torch.float64)
    cells = [tiny_cell(data_name, tricks, steps=STEPS, seed=s, lr=lr, log_every=7)
             for s, lr in zip((0, 1), LRS)]
    trainers, states = build(cells, data)
    assert FusedTrainer(trainers, states).train() == [("done", "")] * 2
    for cell, fused in zip(cells, trainers):
        ref, _ = alone(cell, data)
        assert bool(fused.nets.D.pre_head[0].calibrated)
        assert_same_params_to_scale(ref, fused, 1e-5)
        assert_same_curves(ref, fused, rtol=1e-5)


def test_minibatch_discrimination_fused_penalty_gradients_equal_each_modules(float64):
    """The double backward a gradient penalty takes through the fused layer gives each model's
    own parameter gradients. (Trained with wgan_gp the comparison after steps is moot: D's
    second bias has a gradient component that is a cancellation, ~1e-17 of its neighbours, in
    the cell alone too, and WGAN-GP's Adam (beta1 = 0) turns its sign noise into lr-sized
    steps.)"""
    from bench.train.fused.nets import StackedNet

    trainers, _ = build(cells_for(("minibatch_discrimination",), steps=5), ring8(torch.float64))
    mods = [t.nets.D for t in trainers]
    stacked = StackedNet(mods, "D", torch.device("cpu"))
    x = torch.randn(len(mods), 16, 2)
    stacked(x)  # the data-dependent init, per model
    for k, m in enumerate(mods):
        m(x[k])
    xs = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(stacked(xs).sum(), xs, create_graph=True)
    penalty = ((g.flatten(2).norm(dim=2) - 1) ** 2).mean(1).sum()
    fused = torch.autograd.grad(penalty, stacked.parameters(), allow_unused=True)
    for k, m in enumerate(mods):
        xk = x[k].clone().requires_grad_(True)
        (gk,) = torch.autograd.grad(m(xk).sum(), xk, create_graph=True)
        pk = ((gk.flatten(1).norm(dim=1) - 1) ** 2).mean()
        alone_grads = torch.autograd.grad(pk, list(m.parameters()), allow_unused=True)
        for name, a, b in zip(stacked.names, alone_grads, fused):
            assert (a is None) == (b is None), name
            if a is not None:
                assert torch.allclose(a, b[k], rtol=1e-9, atol=1e-12), name


def test_batch_norm_equals_alone_except_biases_it_cancels(float64):
    """A bias followed by batch norm has a true gradient of 0: its value is rounding noise in
    both runs (asserted tiny), and D's running mean inherits that noise in absolute terms."""
    data = ring8(torch.float64)
    cells = cells_for(("batch_norm",))
    trainers, states = build(cells, data)
    FusedTrainer(trainers, states).train()
    cancelled = {"synthesis.blocks.0.main.bias", "synthesis.blocks.1.main.bias",
                 "blocks.1.main.bias"}
    for cell, fused in zip(cells, trainers):
        ref, _ = alone(cell, data)
        assert_same_params(ref, fused, skip=cancelled | {"blocks.1.norm.running_mean"})
        for net in (ref.nets.G, ref.nets.D, fused.nets.G, fused.nets.D):
            for name, value in net.state_dict().items():
                if name in cancelled:
                    assert value.abs().max() < 1e-8, name
        rm_ref = ref.nets.D.state_dict()["blocks.1.norm.running_mean"]
        rm = fused.nets.D.state_dict()["blocks.1.norm.running_mean"]
        assert (rm - rm_ref).abs().max() <= 1e-5 * rm_ref.abs().max()
        assert_same_curves(ref, fused)


def test_float32_baseline_within_1e_5():
    data = ring8()
    cells = cells_for(())
    trainers, states = build(cells, data)
    FusedTrainer(trainers, states).train()
    for cell, fused in zip(cells, trainers):
        ref, _ = alone(cell, data)
        for net in ("G", "D"):
            a, b = getattr(ref.nets, net).state_dict(), getattr(fused.nets, net).state_dict()
            for name in a:  # relative to the tensor's scale: near-zero entries carry noise
                err = (a[name] - b[name]).abs().max() / a[name].abs().max()
                assert err <= 1e-5, f"{net}.{name}: {err:.3g}"


def test_stacked_adam_is_torch_adam_bit_for_bit():
    gen = torch.Generator().manual_seed(0)
    lrs, b1s, b2s = [1e-3, 2e-4, 5e-4], [0.5, 0.0, 0.9], [0.999, 0.9, 0.99]
    cells = [[torch.randn(6, 4, generator=gen).requires_grad_(),
              torch.randn(6, generator=gen).requires_grad_()] for _ in lrs]
    opts = [torch.optim.Adam(c, lr=lr, betas=(a, b)) for c, lr, a, b in zip(cells, lrs, b1s, b2s)]
    stacked = [torch.stack([c[i].detach() for c in cells]).clone() for i in range(2)]
    fused = StackedAdam(stacked, lrs, b1s, b2s)
    for it in range(30):
        grads = [[torch.randn(p.shape, generator=gen) * 10.0 ** (it % 5 - 3) for p in c]
                 for c in cells]
        for c, opt, g in zip(cells, opts, grads):
            for p, gp in zip(c, g):
                p.grad = gp.clone()
            opt.step()
        fused.step([torch.stack([g[i] for g in grads]) for i in range(2)])
    for i in range(2):
        assert torch.equal(torch.stack([c[i].detach() for c in cells]), stacked[i])


def test_a_diverging_cell_ends_alone_and_the_others_go_on(float64):
    data = ring8(torch.float64)
    cells = cells_for((), steps=10)
    trainers, states = build(cells, data)
    with torch.no_grad():  # poison cell 1 only
        trainers[1].nets.D.head.bias.fill_(float("nan"))
    results = FusedTrainer(trainers, states).train()
    poisoned = Trainer(cells[1], device="cpu", progress=False, dataset=data)
    with torch.no_grad():
        poisoned.nets.D.head.bias.fill_(float("nan"))
    assert results[1] == poisoned.train() == ("diverged", results[1][1])
    assert results[1][1].startswith("non-finite loss at step 0 (d_adv=nan")
    assert trainers[1].step == poisoned.step == 0
    assert results[0] == ("done", "")
    ref, _ = alone(cells[0], data)
    assert_same_params(ref, trainers[0])
    assert_same_curves(ref, trainers[0])


def test_checkpoints_resume_across_engines(float64, tmp_path):
    """A fused run interrupted at step 20 leaves per-cell checkpoints a single Trainer resumes;
    a single run interrupted at 20 resumes fused. Both end as the uninterrupted single run."""
    data = ring8(torch.float64)
    cells = [dataclasses.replace(c, train=dataclasses.replace(c.train, checkpoint_every=10))
             for c in cells_for(("instance_noise",), steps=30)]
    dirs = [tmp_path / f"fused{i}" for i in range(2)]
    trainers, states = build(cells, data, dirs)
    assert FusedTrainer(trainers, states).train(stop_after=20) == \
        [("interrupted", "stopped at step 20")] * 2
    for cell, d in zip(cells, dirs):  # fused -> alone
        resumed, result = alone(cell, data, workdir=d)
        assert result == ("done", "")
        ref, _ = alone(cell, data)
        assert_same_params(ref, resumed)
        assert_same_curves(ref, resumed)
    alone_dirs = [tmp_path / f"alone{i}" for i in range(2)]
    for cell, d in zip(cells, alone_dirs):  # alone -> fused
        alone(cell, data, stop_after=20, workdir=d)
    trainers, states = build(cells, data, alone_dirs)
    assert trainers[0].step == 20
    assert_fused_equals_alone(cells, data, trainers, states)


def test_records_are_single_cell_records_with_the_engine_named(float64):
    data = ring8(torch.float64)
    cells = cells_for(("label_smoothing",), steps=8)
    trainers, states = build(cells, data)
    engine = FusedTrainer(trainers, states)
    results = engine.train()
    for k, (cell, (status, reason)) in enumerate(zip(cells, results)):
        rec = engine.make_record(k, status, reason)
        ref_tr, (s, r) = alone(cell, data)
        ref = ref_tr.make_record(s, r)
        assert rec.cell_id == ref.cell_id and rec.config == ref.config
        assert (rec.status, rec.step, rec.optim, rec.nets) == (ref.status, ref.step, ref.optim,
                                                               ref.nets)
        assert rec.runtime["engine"] == {"name": "fused", "cells": 2, "device": "cpu"}
        assert set(rec.timings) == set(ref.timings) and rec.timings["train_s"] > 0


def refusal_of(tricks, **kw):
    data = ring8()
    trainers = [Trainer(c, device="cpu", progress=False, dataset=data)
                for c in cells_for(tricks, steps=5, **kw)]
    return group_refusal(trainers)


@pytest.mark.parametrize("tricks, reason", [
    (("spectral_norm",), "a parametrized layer (e.g. spectral norm)"),
    (("label_flip",), "label_flip: hook 'targets' has no fused form"),
    (("dropout",), "layer Dropout has no fused form"),
    ((("gradient_penalty", {"interval": 4}),), "lazy regularisation"),
    (("ema_generator",), "ema_generator: hook"),
    (("feature_matching",), "feature_matching: hook"),
])
def test_tricks_without_a_fused_form_are_refused_with_the_reason(tricks, reason):
    why = refusal_of(tricks)
    assert why is not None and reason in why
    data = ring8()
    trainers, states = build(cells_for(tricks, steps=5), data)
    with pytest.raises(NotFusable, match=reason.replace("(", r"\(").replace(")", r"\)")):
        FusedTrainer(trainers, states)


def test_cells_that_differ_in_shape_or_budget_are_not_one_group():
    data = ring8()
    a = Trainer(tiny_cell("ring8", steps=5), device="cpu", progress=False, dataset=data)
    b = Trainer(tiny_cell("ring8", steps=6), device="cpu", progress=False, dataset=data)
    c = Trainer(tiny_cell("ring8", steps=5, width=8), device="cpu", progress=False, dataset=data)
    assert group_refusal([a, b]) == "cells differ in step budget"
    assert group_refusal([a, c]) == "cells differ in net"
    assert group_refusal([a, a]) is None


def test_pacgan_nets_with_packing_fuse(float64):
    pytest.importorskip("bench.nets.pacgan")
    pytest.importorskip("tricks.packing")
    data = ring8(torch.float64)
    opt = OptimConfig(lr=1e-3)
    cells = [CellConfig(data=DataConfig("ring8"), net=NetConfig(z_dim=8, arch="pacgan"),
                        train=TrainConfig(steps=20, batch_size=8, g_optim=opt, d_optim=opt,
                                          log_every=5, checkpoint_every=0),
                        tricks=(full_spec("packing"),), seed=s) for s in (0, 1)]
    trainers, states = build(cells, data)
    assert_fused_equals_alone(cells, data, trainers, states)


@pytest.mark.cuda
def test_fused_on_cuda_equals_the_cpu_cell(float64):
    """The fused step on CUDA draws the CPU cells' random streams, so a CUDA-fused cell equals
    the CPU cell alone up to float64 rounding."""
    data = ring8(torch.float64)
    cells = cells_for(("instance_noise", "minibatch_stddev"))
    trainers, states = build(cells, data)
    engine = FusedTrainer(trainers, states, device="cuda")
    assert engine.train() == [("done", "")] * 2
    for cell, fused in zip(cells, trainers):
        ref, _ = alone(cell, data)
        assert_same_params(ref, fused)
        assert_same_curves(ref, fused, rtol=1e-7)


@pytest.mark.cuda
def test_fused_image_cells_on_cuda_equal_the_cpu_cell(float64):
    """Image cells (grouped convolutions, 2-D batch norm) fused on CUDA draw the CPU cells'
    streams: equal to the CPU cell alone up to float64 rounding."""
    data = digits(torch.float64)
    cells = [tiny_cell("digits", ("batch_norm", "instance_noise"), steps=20, seed=s, lr=lr,
                       log_every=5) for s, lr in zip((0, 1), LRS)]
    trainers, states = build(cells, data)
    assert FusedTrainer(trainers, states, device="cuda").train() == [("done", "")] * 2
    for cell, fused in zip(cells, trainers):
        ref, _ = alone(cell, data)
        assert_same_params(ref, fused)
        assert_same_curves(ref, fused, rtol=1e-7)


def _forward_cases():
    from bench.nets import build_nets

    def mlp(i):
        torch.manual_seed(i)
        return build_nets(NetConfig(z_dim=8, width=16, depth=2), "2d", (2,))

    yield "mlp", [mlp(i) for i in range(3)], 8
    try:
        from bench.nets.pacgan import pacgan_discriminator, pacgan_generator
        from tricks.packing import Pack
    except ImportError:
        return

    def pac(i):
        torch.manual_seed(i)
        G, D = pacgan_generator(8, 2), pacgan_discriminator(2)
        main = D.blocks[0].main  # packing's widened input layer (m = 2) inside the maxout
        main[0] = torch.nn.Linear(4, main[0].out_features)
        D.blocks[0].main = Pack(2, main)
        return type("Nets", (), {"G": G, "D": D})

    yield "pacgan+packing", [pac(i) for i in range(3)], 8


def test_stacked_forward_equals_each_modules_forward(float64):
    """The fused forward of K modules is each module's own forward, in train mode (batch
    statistics, running statistics updated alike) and in eval mode."""
    from bench.train.fused.nets import StackedNet

    for name, nets, batch in _forward_cases():
        for net, width in (("G", 8), ("D", 2)):
            mods = [getattr(n, net) for n in nets]
            stacked = StackedNet(mods, net, torch.device("cpu"))
            n_in = batch * (2 if name.startswith("pacgan") and net == "D" else 1)
            x = torch.randn(len(mods), n_in, width)
            assert_stacked_forward_equals_each(stacked, mods, x, (name, net))


def test_stacked_conv_nets_with_batch_norm_equal_each_modules_forward(float64):
    """DCGAN-style G and D with 2-D batch norm (digits 16x16), in train mode (batch statistics;
    running statistics updated alike) and in eval mode (running statistics read)."""
    from bench.train.fused.nets import StackedNet

    data = digits(torch.float64)
    trainers, _ = build([tiny_cell("digits", ("batch_norm",), seed=s) for s in range(3)], data)
    for net, shape in (("G", (8,)), ("D", (1, 16, 16))):
        mods = [getattr(t.nets, net) for t in trainers]
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in mods[0].modules())
        stacked = StackedNet(mods, net, torch.device("cpu"))
        x = torch.randn(len(mods), 16, *shape)
        assert_stacked_forward_equals_each(stacked, mods, x, net)
