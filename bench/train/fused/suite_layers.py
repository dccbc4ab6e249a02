"""Fused forms of the suite's network shells (bench/nets/parts.py) and of the plug-in tricks'
layers, for K stacked models. The tricks' forms register on import; the shells' come from
`shells()`, which imports bench.nets late (bench.nets imports this package's users)."""
from __future__ import annotations

import torch
from torch import nn

from bench.train.fused.forms import PLUGIN_FORMS, LayerFn, NotFusable, RunState, form_of, run


# -- containers: the shells of bench/nets/parts.py ----------------------------------------------
def _children(module: nn.Module, prefix: str, x: torch.Tensor, st: RunState,
              names) -> torch.Tensor:
    for name in names:
        x = run(getattr(module, name) if not name.isdigit() else module[int(name)],
                f"{prefix}{name}.", x, st)
    return x


def _generator(m, prefix, x, st):
    return _children(m, prefix, x, st, ("mapping", "synthesis"))


def _synthesis(m, prefix, x, st):
    if m.in_shape:
        x = x.reshape(x.shape[0], x.shape[1], *m.in_shape)
    x = _children(m.blocks, f"{prefix}blocks.", x, st, [str(i) for i in range(len(m.blocks))])
    return run(m.to_out, f"{prefix}to_out.", x, st)


def _stage(m, prefix, x, st):
    from bench.nets.parts import Stage

    for name in Stage.POINTS:
        child = getattr(m, name)
        if type(child) is not nn.Identity:
            x = run(child, f"{prefix}{name}.", x, st)
    return x


def discriminator_features(m, prefix, x, st):
    """`D.features(x)` of K stacked discriminators."""
    return _children(m.blocks, f"{prefix}blocks.", x, st, [str(i) for i in range(len(m.blocks))])


def _discriminator(m, prefix, x, st):
    h = discriminator_features(m, prefix, x, st)
    h = run(m.pre_head, f"{prefix}pre_head.", h, st)
    out = run(m.head, f"{prefix}head.", h, st).flatten(2)
    return out.squeeze(2) if out.shape[2] == 1 else out


def _sequence(m, prefix, x, st):
    return _children(m, prefix, x, st, [str(i) for i in range(len(m))])



def _group_for(batch: int, group_size: int) -> int:
    """The largest divisor of `batch` that is <= group_size (tricks/minibatch_stddev.py)."""
    g = max(1, min(group_size, batch))
    while batch % g:
        g -= 1
    return g


def _minibatch_stddev(m, prefix, x, st):
    """tricks/minibatch_stddev.py's layer per model: sample i is in group i mod (B / G)."""
    k, b = x.shape[:2]
    g = _group_for(b, m.group_size)
    y = x.reshape(k, g, b // g, *x.shape[2:])
    y = y - y.mean(dim=1, keepdim=True)
    std = (y.square().mean(dim=1) + m.eps).sqrt()      # [K, M, ...]
    stat = std.flatten(2).mean(dim=2).repeat(1, g)      # [K, B]
    shape = (k, b, 1, *x.shape[3:])
    return torch.cat([x, stat.view(k, b, *([1] * (x.dim() - 2))).expand(shape)], dim=2)


def _maxout(m, prefix, x, st):
    return x.unflatten(-1, (-1, m.pieces)).amax(dim=-1)


def _pack(m, prefix, x, st):
    """tricks/packing.py's Pack per model: [K, m*B, d, ...] -> [K, B, m*d, ...], then its layer."""
    k, n = x.shape[:2]
    if n % m.m:
        raise NotFusable(f"packing: D got {n} samples, not a multiple of m = {m.m}")
    return run(m.layer, f"{prefix}layer.", x.reshape(k, n // m.m, m.m * x.shape[2],
                                                      *x.shape[3:]), st)


def _dual_discriminator(m, prefix, x, st):
    """tricks/dual_discriminator.py's D2GAN pair per model: [K, B, 2] raw outputs of D1, D2."""
    a = run(m.d1, f"{prefix}d1.", x, st)
    b = run(m.d2, f"{prefix}d2.", x, st)
    if a.dim() != 2 or b.dim() != 2:
        raise NotFusable("dual_discriminator needs a D with one output per sample")
    return torch.stack([a, b], dim=2)


def _minibatch_discrimination(m, prefix, x, st):
    """tricks/minibatch_discrimination.py's layer (version 3) per model: the features and
    kernels of the K models in one product, the closeness sums through the trick's own
    `pair_closeness` model by model. The data-dependent init on the first batch in training
    mode is the layer's `_calibrate`, per model whose `calibrated` is still False."""
    import importlib

    lib = importlib.import_module(type(m).__module__)  # the trick's kernels (no static import)
    k, b = x.shape[:2]
    f = x.mean(dim=tuple(range(3, x.dim()))) if x.dim() > 3 else x      # pooled: [K, B, A]
    if f.shape[2] != m.in_features:
        raise NotFusable(f"minibatch discrimination expects {m.in_features} features")
    theta, log_scale = st.p(prefix + "theta"), st.p(prefix + "log_scale")  # [K, A, n, c], [K, n, c]
    calibrated = st.b(prefix + "calibrated")  # [K]

    def kernels() -> torch.Tensor:  # W = theta * exp(log_scale) / ||theta||, [K, A, n, c]
        return theta * (log_scale.exp() / theta.norm(dim=1)).unsqueeze(1)

    if st.training and b > 1 and not bool(calibrated.all()):
        with torch.no_grad():
            for i in range(k):
                if bool(calibrated[i]):
                    continue
                fi = f[i].detach()
                mi = torch.einsum("na,akc->nkc", fi, kernels()[i])
                dist = lib.l1_distances(mi) + 1e6 * torch.eye(b, device=x.device,
                                                               dtype=x.dtype)[..., None]
                mean_min = 0.5 * dist.min(dim=1).values.mean(dim=0)
                log_scale[i].sub_(mean_min.clamp_min(1e-12).log()[:, None])
                bias = st.p(prefix + "bias")
                bias[i].zero_()
                mi = torch.einsum("na,akc->nkc", fi, kernels()[i])
                bias[i].copy_(-(lib.pair_closeness(mi) - 1.0 + bias[i]).mean(dim=0))
                calibrated[i] = True
    mm = torch.einsum("kba,kanc->kbnc", f, kernels())                     # M: [K, B, n, c]
    # one call per model: the trick's tiles and saved pairs are sized for one model's kernels
    # (all K side by side measured ~10x slower per cell at K = 5, batch 512)
    o = torch.stack([lib.pair_closeness(mm[i]) for i in range(k)]) - 1.0 \
        + st.p(prefix + "bias").unsqueeze(1)                               # [K, B, n]
    if x.dim() > 3:  # broadcast over positions as extra channels
        o = o.view(*o.shape, *([1] * (x.dim() - 3))).expand(-1, -1, -1, *x.shape[3:])
    return torch.cat([x, o], dim=2)


# Layers of plug-in tricks, by qualified class name: `bench/train` may not import `tricks`
# (tests/test_architecture.py), and a fused form is written for one version of a layer: the
# equivalence tests (tests/test_fused_engine.py) check each against the layer itself.
PLUGIN_FORMS.update({
    "tricks.minibatch_stddev.MinibatchStdDev": _minibatch_stddev,
    "tricks.packing.Pack": _pack,
    "tricks.dual_discriminator.DualDiscriminator": _dual_discriminator,
    "tricks.minibatch_discrimination.MinibatchDiscrimination": _minibatch_discrimination,
})


def shells() -> dict[type, LayerFn]:
    """The suite's own network types and their fused forms (PacGAN's maxout where installed)."""
    from bench.nets.parts import Discriminator, Generator, Stage, Synthesis

    forms: dict[type, LayerFn] = {
        Generator: _generator, Synthesis: _synthesis, Stage: _stage,
        Discriminator: _discriminator, nn.Sequential: _sequence, nn.ModuleList: _sequence}
    try:
        from bench.nets.pacgan import Maxout
        forms[Maxout] = _maxout
    except ImportError:
        pass
    return forms


def features(template: nn.Module, x: torch.Tensor, st: RunState) -> torch.Tensor:
    """`D.features(x)` of K stacked discriminators of `template`'s structure (a D2GAN pair's
    features are D1's)."""
    if form_of(template) is _dual_discriminator:
        return discriminator_features(template.d1, "d1.", x, st)
    return discriminator_features(template, "", x, st)
