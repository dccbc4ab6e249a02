"""minibatch_discrimination: v2's L1 distances have a backward of plain ops (double backward on
every device, not cdist's backward), computed in blocks of rows; v3's closeness sums (each pair
once, in tiles) equal v2's in values, gradients and double backward; gradient penalties
differentiate through them. Kernels sit on globally pooled features."""
from __future__ import annotations

import pytest
import torch

import tricks.minibatch_discrimination as mbd
from tests.tiny import tiny_trainer
from bench.schedule.grid import full_spec
from tricks.minibatch_discrimination import MinibatchDiscrimination, l1_distances, pair_closeness


def _penalty_grads(layer, x, distances):
    """Parameter gradient of an R1-style penalty ||d sum(D(x)) / dx||^2 (a double backward)."""
    x = x.clone().requires_grad_(True)
    m = torch.einsum("na,akc->nkc", layer.pooled(x), layer.T)
    others = 1.0 - torch.eye(x.shape[0], dtype=x.dtype)
    o = (torch.exp(-distances(m)) * others[..., None]).sum(dim=1) + layer.bias
    (gx,) = torch.autograd.grad((o ** 2).sum(), x, create_graph=True)
    return torch.autograd.grad(gx.square().sum(), list(layer.parameters()))


def test_distances_and_their_double_backward_equal_cdist_on_the_cpu(monkeypatch):
    """Values, gradients and the gradient of an input-gradient penalty (a double backward) equal
    torch.cdist's on the CPU, where cdist has one; the backward's row blocks do not matter."""
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(6, n_kernels=4, kernel_dim=3, data_init=False).double()
    x = torch.randn(7, 6, dtype=torch.float64)

    def reference(m):  # torch.cdist: double backward exists on the CPU only
        return torch.cdist(m.permute(1, 0, 2), m.permute(1, 0, 2), p=1).permute(1, 2, 0)

    m = torch.randn(7, 4, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 7, 4, dtype=torch.float64)
    assert torch.allclose(l1_distances(m), reference(m))
    want = _penalty_grads(layer, x, reference)
    want_first = torch.autograd.grad((reference(m) * w).sum(), m)[0]
    for block in (1 << 22, 2 * 7 * 4 * 3):  # one block; blocks of 2 rows
        monkeypatch.setattr(mbd, "_BLOCK_ELEMENTS", block)
        assert torch.allclose(torch.autograd.grad((l1_distances(m) * w).sum(), m)[0], want_first)
        for a, b in zip(_penalty_grads(layer, x, l1_distances), want):
            assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def _graph_names(t):
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        names.add(type(fn).__name__)
        todo.extend(f for f, _ in fn.next_functions)
    return names


def test_no_cdist_backward_in_the_graph_and_gradient_penalty_pairs_train():
    """cdist's backward (no derivative on CUDA) never enters a graph, not even the graph of the
    input gradient that penalties differentiate again; the pairs that need this train."""
    layer = MinibatchDiscrimination(6, n_kernels=4, kernel_dim=3, data_init=False)
    x = torch.randn(7, 6, requires_grad=True)
    o = layer.closeness(x)
    (gx,) = torch.autograd.grad(o.square().sum(), x, create_graph=True)
    names = _graph_names(o) | _graph_names(gx)
    assert any("PairCloseness" in n for n in names)
    assert not any("Cdist" in n for n in names), names
    for other in ("gradient_penalty", "relativistic", "wgan_gp"):
        tr = tiny_trainer("digits", ["minibatch_discrimination", other], steps=2)
        assert tr.train() == ("done", ""), other


def test_minibatch_features_are_globally_pooled():
    """The kernels see the pooled feature channels, not the flattened map (v1 had 64x4x4 = 1,024
    inputs on digits); a permutation of positions inside the map leaves o unchanged."""
    tr = tiny_trainer("digits", ["minibatch_discrimination"], steps=1)
    layer = tr.nets.D.pre_head[0]
    assert layer.theta.shape == (tr.nets.D.blocks[-1].channels, 100, 5)
    fmap = torch.randn(16, layer.in_features, 4, 4)
    perm = torch.randperm(16)
    shuffled = fmap.flatten(2)[:, :, perm].view_as(fmap)
    assert torch.allclose(layer.closeness(fmap), layer.closeness(shuffled), atol=1e-5)


def _version2(m):
    """Version 2's closeness sums: L1 distances [N, N, K], exp, sum over the batch."""
    return torch.exp(-l1_distances(m)).sum(dim=1)


@pytest.mark.parametrize("tile", [1 << 20, 3 * 4 * 37, 4 * 3 * 37 * 5])  # one tile; 1; 5 rows
@pytest.mark.parametrize("keep_e", [True, False])
def test_pair_closeness_equals_version_2(monkeypatch, tile, keep_e):
    """Values, first and second derivatives (an input-gradient penalty's double backward) agree
    with version 2's computation to 1e-6 on random inputs, whatever the tile size (37 rows: 5
    does not divide it) and whether the forward keeps e for the backward."""
    monkeypatch.setattr(mbd, "_TILE_ELEMENTS", tile)
    monkeypatch.setattr(mbd, "_SAVE_ELEMENTS", 1 << 26 if keep_e else 0)
    torch.manual_seed(1)
    m = torch.randn(37, 4, 3, dtype=torch.float64, requires_grad=True)
    u = torch.randn(37, 4, dtype=torch.float64)
    new, old = pair_closeness(m), _version2(m)
    assert torch.allclose(new, old, rtol=0, atol=1e-6)
    g_fast = torch.autograd.grad((pair_closeness(m) * u).sum(), m)[0]   # the in-place backward
    g_new = torch.autograd.grad((new * u).sum(), m, create_graph=True)[0]
    g_old = torch.autograd.grad((old * u).sum(), m, create_graph=True)[0]
    assert torch.allclose(g_fast, g_old, rtol=0, atol=1e-6)
    assert torch.allclose(g_new, g_old, rtol=0, atol=1e-6)
    h_new = torch.autograd.grad(g_new.square().sum(), m)[0]
    h_old = torch.autograd.grad(g_old.square().sum(), m)[0]
    assert torch.allclose(h_new, h_old, rtol=0, atol=1e-6)
    assert torch.autograd.gradcheck(pair_closeness, (m[:6].detach().requires_grad_(True),))


def test_pair_closeness_float32_at_a_paper_2d_batch():
    """float32 at batch 512 x 100 kernels x 5 dims (paper-2d): the sums and the gradient agree
    with version 2's to 1e-6 of their scale."""
    torch.manual_seed(2)
    m = torch.randn(512, 100, 5, requires_grad=True)
    u = torch.randn(512, 100)
    new, old = pair_closeness(m), _version2(m)
    assert ((new - old).abs().max() / old.abs().max()) < 1e-6
    g_new = torch.autograd.grad((new * u).sum(), m)[0]
    g_old = torch.autograd.grad((old * u).sum(), m)[0]
    assert ((g_new - g_old).abs().max() / g_old.abs().max()) < 1e-6


def test_minibatch_discrimination_is_version_3():
    assert full_spec("minibatch_discrimination").version == 3
