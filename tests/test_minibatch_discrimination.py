"""minibatch_discrimination v2: L1 distances without torch.cdist (double backward on every device),
computed in blocks of rows; gradient penalties differentiate through it."""
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


def test_blocked_broadcast_distances_equal_cdist_and_its_double_backward(monkeypatch):
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(6, n_kernels=4, kernel_dim=3, data_init=False).double()
    x = torch.randn(7, 6, dtype=torch.float64)

    def reference(m):  # torch.cdist: double backward exists on the CPU only
        return torch.cdist(m.permute(1, 0, 2), m.permute(1, 0, 2), p=1).permute(1, 2, 0)

    m = torch.randn(7, 4, 3, dtype=torch.float64)
    assert torch.allclose(l1_distances(m), reference(m))
    want = _penalty_grads(layer, x, reference)
    monkeypatch.setattr(mbd, "_BLOCK_ELEMENTS", 2 * 7 * 4 * 3)  # blocks of 2 rows: 4 blocks
    assert torch.equal(l1_distances(m), torch.cat([(m[i:i + 1, None] - m[None]).abs().sum(-1)
                                                   for i in range(7)]))
    got = _penalty_grads(layer, x, l1_distances)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-12)


def test_layer_never_calls_cdist_and_trains_with_gradient_penalties(monkeypatch):
    def no_cdist(*a, **k):
        raise AssertionError("torch.cdist has no double backward on CUDA")

    monkeypatch.setattr(torch, "cdist", no_cdist)
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
