"""minibatch_discrimination v2: L1 distances whose backward is plain ops (double backward on every
device, not cdist's backward), computed in blocks of rows; gradient penalties differentiate
through it. Kernels sit on globally pooled features."""
from __future__ import annotations

import torch

import tricks.minibatch_discrimination as mbd
from tests.tiny import tiny_trainer
from tricks.minibatch_discrimination import MinibatchDiscrimination, l1_distances


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
    assert any("L1Distances" in n for n in names)
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
