"""K networks of one shape as one: every parameter and buffer stacked along a leading model axis,
and a forward pass that interprets the per-cell module tree on inputs of shape [K, B, ...].

The per-cell modules (built by the ordinary `Trainer`, so initialisation and every trick's `build`
are exactly a single cell's) serve as the template: `StackedNet` reads their structure and runs
each known layer type on the stacked tensors (a linear layer is one `baddbmm` over the K models).
A layer type it does not know is refused with its name (`NotFusable`), and so is a module with
hooks or a parametrization (spectral norm): their forward is not the plain layer's.

New layer types register a fused forward with `fused_layer(cls)` (e.g. a maxout layer):
`fn(module, prefix, x, state) -> y`, where `state.p(prefix + "weight")` is the stacked tensor
[K, *shape] and `x` is [K, B, ...].
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn


class NotFusable(ValueError):
    """The cells cannot be trained as one fused step; the message says why (one line)."""


LayerFn = Callable[[nn.Module, str, torch.Tensor, "RunState"], torch.Tensor]
_LAYERS: dict[type, LayerFn] = {}


def fused_layer(cls: type) -> Callable[[LayerFn], LayerFn]:
    """Register the fused forward of a layer type (exact type match: a subclass may change
    what forward computes)."""
    def register(fn: LayerFn) -> LayerFn:
        _LAYERS[cls] = fn
        return fn
    return register


class RunState:
    """What one fused forward reads: the stacked parameters (possibly replaced, e.g. by an
    unrolled D's), the stacked buffers, and whether the nets are in training mode."""

    def __init__(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor],
                 training: bool):
        self.params, self.buffers, self.training = params, buffers, training

    def p(self, name: str) -> torch.Tensor:
        return self.params[name]

    def b(self, name: str) -> torch.Tensor:
        return self.buffers[name]


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


# -- leaf layers ----------------------------------------------------------------------------------
@fused_layer(nn.Linear)
def _linear(m, prefix, x, st):
    w = st.p(prefix + "weight").transpose(1, 2)  # [K, in, out]; BLAS reads the transpose
    if m.bias is None:
        return torch.bmm(x, w)
    return torch.baddbmm(st.p(prefix + "bias").unsqueeze(1), x, w)


@fused_layer(nn.Identity)
def _identity(m, prefix, x, st):
    return x


@fused_layer(nn.ReLU)
def _relu(m, prefix, x, st):
    return F.relu(x)


@fused_layer(nn.LeakyReLU)
def _leaky(m, prefix, x, st):
    return F.leaky_relu(x, m.negative_slope)


@fused_layer(nn.Tanh)
def _tanh(m, prefix, x, st):
    return torch.tanh(x)


@fused_layer(nn.BatchNorm1d)
def _batch_norm(m, prefix, x, st):
    """Per-model batch statistics over each model's own batch (dim 1). Running statistics are
    stacked buffers [K, C], updated here in place as nn.BatchNorm1d does in training mode
    (momentum average, unbiased variance, a step counter), and read in eval mode."""
    if x.dim() != 3:
        raise NotFusable("batch norm is fused for MLP features [K, B, C] only")
    return _batch_norm_over(m, prefix, x, st, dims=(1,))


@fused_layer(nn.BatchNorm2d)
def _batch_norm_2d(m, prefix, x, st):
    """nn.BatchNorm2d per model on feature maps [K, B, C, H, W]: statistics over each model's
    batch and pixels (dims 1, 3, 4), running statistics as `_batch_norm`'s."""
    if x.dim() != 5:
        raise NotFusable("2-D batch norm is fused for feature maps [K, B, C, H, W] only")
    return _batch_norm_over(m, prefix, x, st, dims=(1, 3, 4))


def _batch_norm_over(m, prefix, x, st, dims: tuple[int, ...]):
    track = m.track_running_stats
    use_batch = st.training or not track
    shape = [x.shape[0]] + [1] * (x.dim() - 1)  # [K, 1, C, 1, 1]: C at dim 2
    shape[2] = x.shape[2]
    w = st.p(prefix + "weight").view(shape) if m.affine else None
    b = st.p(prefix + "bias").view(shape) if m.affine else None
    if use_batch:
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        if st.training and track:
            n = 1
            for d in dims:
                n *= x.shape[d]
            with torch.no_grad():
                rm, rv = st.b(prefix + "running_mean"), st.b(prefix + "running_var")
                nbt = st.b(prefix + "num_batches_tracked")
                nbt.add_(1)
                mean_kc = mean.detach().reshape(x.shape[0], x.shape[2])
                var_kc = var.detach().reshape(x.shape[0], x.shape[2])
                mom = m.momentum if m.momentum is not None else None
                if mom is None:  # cumulative average, as nn.BatchNorm with momentum=None
                    mom_t = (1.0 / nbt.to(x.dtype)).unsqueeze(1)
                    rm.mul_(1 - mom_t).add_(mom_t * mean_kc)
                    rv.mul_(1 - mom_t).add_(mom_t * var_kc * n / max(n - 1, 1))
                else:
                    rm.mul_(1 - mom).add_(mean_kc, alpha=mom)
                    rv.mul_(1 - mom).add_(var_kc * (n / max(n - 1, 1)), alpha=mom)
    else:
        mean = st.b(prefix + "running_mean").view(shape)
        var = st.b(prefix + "running_var").view(shape)
    y = (x - mean) * torch.rsqrt(var + m.eps)
    if w is not None:
        y = y * w + b
    return y


# -- conv layers: the K models as one grouped convolution ---------------------------------------
def _plain_conv(m, transposed: bool) -> None:
    if m.groups != 1 or m.padding_mode != "zeros" or (transposed and any(m.output_padding)) \
            or isinstance(m.padding, str):
        raise NotFusable(f"{type(m).__name__}({m.extra_repr()}) has no fused form (groups, "
                         f"padding mode or output padding)")


def _models_as_channels(x: torch.Tensor) -> torch.Tensor:
    """[K, B, C, H, W] -> [B, K*C, H, W] (model k's channels are the k-th block)."""
    k, b = x.shape[:2]
    return x.transpose(0, 1).reshape(b, k * x.shape[2], *x.shape[3:])


def _channels_as_models(y: torch.Tensor, k: int) -> torch.Tensor:
    """[B, K*C, H, W] -> [K, B, C, H, W]."""
    b = y.shape[0]
    return y.reshape(b, k, y.shape[1] // k, *y.shape[2:]).transpose(0, 1)


@fused_layer(nn.Conv2d)
def _conv2d(m, prefix, x, st):
    """K models' Conv2d as one convolution with groups = K: model k's input channels only meet
    model k's filters."""
    _plain_conv(m, False)
    k = x.shape[0]
    w = st.p(prefix + "weight")  # [K, O, C, kh, kw]
    bias = st.p(prefix + "bias").reshape(-1) if m.bias is not None else None
    y = F.conv2d(_models_as_channels(x), w.reshape(-1, *w.shape[2:]), bias, m.stride,
                 m.padding, m.dilation, groups=k)
    return _channels_as_models(y, k)


@fused_layer(nn.ConvTranspose2d)
def _conv_transpose2d(m, prefix, x, st):
    """K models' ConvTranspose2d as one with groups = K (weight [K*C_in, C_out, kh, kw])."""
    _plain_conv(m, True)
    k = x.shape[0]
    w = st.p(prefix + "weight")  # [K, C, O, kh, kw]
    bias = st.p(prefix + "bias").reshape(-1) if m.bias is not None else None
    y = F.conv_transpose2d(_models_as_channels(x), w.reshape(-1, *w.shape[2:]), bias, m.stride,
                           m.padding, m.output_padding, k, m.dilation)
    return _channels_as_models(y, k)


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
_PLUGIN_LAYERS: dict[str, LayerFn] = {
    "tricks.minibatch_stddev.MinibatchStdDev": _minibatch_stddev,
    "tricks.packing.Pack": _pack,
    "tricks.dual_discriminator.DualDiscriminator": _dual_discriminator,
    "tricks.minibatch_discrimination.MinibatchDiscrimination": _minibatch_discrimination,
}
_builtins_loaded = False


def _load_builtins() -> None:
    """Fused forms of the suite's own network shells (imported late: bench.nets imports this
    package's users)."""
    global _builtins_loaded
    if _builtins_loaded:
        return
    from bench.nets.parts import Discriminator, Generator, Stage, Synthesis

    _LAYERS.update({Generator: _generator, Synthesis: _synthesis, Stage: _stage,
                    Discriminator: _discriminator, nn.Sequential: _sequence,
                    nn.ModuleList: _sequence})
    try:  # PacGAN's maxout D, where installed
        from bench.nets.pacgan import Maxout
        _LAYERS[Maxout] = _maxout
    except ImportError:
        pass
    _builtins_loaded = True


def _layer_fn(module: nn.Module) -> LayerFn | None:
    _load_builtins()
    t = type(module)
    fn = _LAYERS.get(t)
    if fn is None:
        fn = _PLUGIN_LAYERS.get(f"{t.__module__}.{t.__qualname__}")
    return fn


def run(module: nn.Module, prefix: str, x: torch.Tensor, st: RunState) -> torch.Tensor:
    fn = _layer_fn(module)
    if fn is None:
        raise NotFusable(f"layer {type(module).__name__} has no fused form")
    return fn(module, prefix, x, st)


def check_fusable(module: nn.Module, what: str) -> None:
    """NotFusable naming the first submodule the fused forward cannot run exactly."""
    from torch.nn.utils import parametrize

    for name, m in module.named_modules():
        where = f"{what}.{name}" if name else what
        if parametrize.is_parametrized(m):
            raise NotFusable(f"{where}: a parametrized layer (e.g. spectral norm) has no fused "
                             f"form")
        if _layer_fn(m) is None:
            raise NotFusable(f"{where}: layer {type(m).__name__} has no fused form")
        if m._forward_hooks or m._forward_pre_hooks:
            raise NotFusable(f"{where}: {type(m).__name__} has forward hooks")
        if type(m) in (nn.BatchNorm1d, nn.BatchNorm2d) and m.momentum is None:
            raise NotFusable(f"{where}: batch norm with a cumulative average")


def structure(module: nn.Module) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
    """What must be equal for modules to stack: every parameter and buffer's name, shape and
    dtype, and every submodule's type and settings (extra_repr)."""
    out = [(f"{n}:{type(m).__name__}({m.extra_repr()})", (), torch.float32)
           for n, m in module.named_modules()]
    out += [(n, tuple(t.shape), t.dtype) for n, t in module.named_parameters()]
    out += [(n, tuple(t.shape), t.dtype) for n, t in module.named_buffers()]
    return out


class StackedNet:
    """K modules of one structure as stacked tensors. `params` are leaf tensors [K, ...] that
    the engine's optimizer updates; `buffers` (batch-norm statistics) are updated in place by
    the forward pass in training mode."""

    def __init__(self, modules: list[nn.Module], what: str, device: torch.device):
        first = modules[0]
        check_fusable(first, what)
        shape = structure(first)
        for i, m in enumerate(modules[1:], 1):
            if structure(m) != shape:
                raise NotFusable(f"{what} of cell {i} differs in structure from cell 0's")
        self.template, self.what = first, what
        self.names = [n for n, p in first.named_parameters() if p.requires_grad]
        frozen = [n for n, p in first.named_parameters() if not p.requires_grad]
        if frozen:
            raise NotFusable(f"{what} has frozen parameters ({frozen[0]})")
        with torch.no_grad():
            self.params = {n: torch.stack([dict(m.named_parameters())[n].detach()
                                           for m in modules]).to(device).requires_grad_(True)
                           for n in self.names}
            self.buffers = {n: torch.stack([dict(m.named_buffers())[n].detach()
                                            for m in modules]).to(device).clone()
                            for n, _ in first.named_buffers()}
        self.training = True

    def __call__(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
                 buffers: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        st = RunState(self.params if params is None else params,
                      self.buffers if buffers is None else buffers, self.training)
        return run(self.template, "", x, st)

    def features(self, x: torch.Tensor, params: dict[str, torch.Tensor] | None = None,
                 buffers: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        st = RunState(self.params if params is None else params,
                      self.buffers if buffers is None else buffers, self.training)
        if _layer_fn(self.template) is _dual_discriminator:  # its features are D1's
            return discriminator_features(self.template.d1, "d1.", x, st)
        return discriminator_features(self.template, "", x, st)

    def parameters(self) -> list[torch.Tensor]:
        return [self.params[n] for n in self.names]

    @torch.no_grad()
    def write_back(self, k: int, module: nn.Module) -> None:
        """Copy model k's parameters and buffers into a per-cell module of the structure."""
        params, buffers = dict(module.named_parameters()), dict(module.named_buffers())
        for n in self.names:
            params[n].copy_(self.params[n][k])
        for n, b in self.buffers.items():
            buffers[n].copy_(b[k])
