"""Virtual batch normalization in G: every example is normalised with statistics of a fixed
reference batch combined with the example itself, so an example's output never depends on the
other examples of its batch. Salimans et al. 2016, "Improved Techniques for Training GANs",
section 3.4; details from the authors' code (openai/improved-gan, imagenet/model.py `VBN`).

* Reference batch: N latent vectors z_ref drawn once at build from a torch.Generator seeded with
  the cell seed, stored as the buffer `vbn_z_ref` of G's first stage (so checkpoints carry it).
  N defaults to the training batch size (the authors' reference batch is one batch).
* Every forward of G's synthesis runs the reference batch together with the batch: a forward
  pre-hook on the first stage prepends the reference rows to its input (z_ref shaped like that
  input: G's mapping must be the Identity, so the first stage sees the prepared z), a forward
  hook on the output layer `to_out` drops them again (both only within a call of G.synthesis,
  flagged by hooks on the synthesis that leave its input and output untouched). So `G(z)` and
  `G.synthesis(w)` both return only the batch's rows, and the tensor `G.synthesis` receives
  (what `path_length` differentiates against) holds only the batch. The reference activations
  are recomputed with the current weights each time and gradients flow through them, as in the
  authors' code.
* A VBN layer in `Stage.norm` of every G stage (not the output layer), per channel: with reference
  mean mu_r and mean square s_r (over the reference examples and positions), an example with its
  own per-channel mean mu_x and mean square s_x (over its positions; MLP: its values) is
  normalised with mu = mu_x/(N+1) + N mu_r/(N+1), var = s_x/(N+1) + N s_r/(N+1) - mu^2:
  y = gamma (x - mu) / sqrt(var + 1e-5) + beta, gamma ~ N(1, 0.02), beta = 0. The reference rows
  themselves are normalised with the reference statistics alone (the authors' reference pass).
* Same computation in train and eval mode (no running statistics).

The VBN layers only work inside a call of G or of its synthesis (the hooks tell them how many rows
are the reference); calling a single stage directly raises a clear error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from bench.trickapi.trick import TrickError
from tricks import Trick, register_trick
from tricks._lib.layers import stages

REF_BUFFER = "vbn_z_ref"


class _ReferenceRows:
    """How many leading rows of the activations currently flowing through G's synthesis are the
    reference batch (0 outside a synthesis call). One plain object shared by the hooks and the VBN
    layers of one G; `copy.deepcopy(G)` gives the copy its own."""

    def __init__(self) -> None:
        self.active = False  # inside a call of G.synthesis
        self.n = 0


class VirtualBatchNorm(nn.Module):
    def __init__(self, channels: int, eps: float = 1e-5, rows: _ReferenceRows | None = None):
        super().__init__()
        self.channels, self.eps = channels, eps
        self.weight = nn.Parameter(torch.empty(channels))
        self.bias = nn.Parameter(torch.empty(channels))
        self.rows = rows if rows is not None else _ReferenceRows()
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.weight, 1.0, 0.02)
        nn.init.zeros_(self.bias)

    def _affine(self, x, mean, mean_sq):
        var = (mean_sq - mean.square()).clamp_min(0.0)
        shape = (1, -1) + (1,) * (x.dim() - 2)
        normed = (x - mean) / (var + self.eps).sqrt()
        return normed * self.weight.view(shape) + self.bias.view(shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.rows.n
        if n <= 0 or x.shape[0] < n:
            raise RuntimeError("VirtualBatchNorm runs only inside a call of G or G.synthesis, "
                               "which prepends the reference batch (virtual_batch_norm); do not "
                               "call G's stages directly")
        spatial = tuple(range(2, x.dim()))
        ref, own = x[:n], x[n:]
        ref_mean = ref.mean(dim=(0, *spatial), keepdim=True)
        ref_sq = ref.square().mean(dim=(0, *spatial), keepdim=True)
        out_ref = self._affine(ref, ref_mean, ref_sq)
        if own.shape[0] == 0:
            return out_ref
        own_mean = own.mean(dim=spatial, keepdim=True) if spatial else own
        own_sq = own.square().mean(dim=spatial, keepdim=True) if spatial else own.square()
        c = 1.0 / (n + 1.0)
        out = self._affine(own, c * own_mean + (1 - c) * ref_mean, c * own_sq + (1 - c) * ref_sq)
        return torch.cat([out_ref, out], dim=0)

    def extra_repr(self) -> str:
        return f"{self.channels}, eps={self.eps}"


# Hooks find their state through the module they are called with (never a closure), so a deep
# copy of G (its hooks dicts are copied) works on its own buffers and counters.
def _enter_synthesis(synthesis: nn.Module, args: tuple) -> None:
    synthesis._vbn_rows.active, synthesis._vbn_rows.n = True, 0


def _prepend_reference(first_stage: nn.Module, args: tuple) -> tuple | None:
    if not first_stage._vbn_rows.active:  # a stage called on its own: no reference rows
        return None
    (x, *rest) = args
    z_ref = getattr(first_stage, REF_BUFFER)
    try:
        ref = z_ref.to(x.dtype).view(z_ref.shape[0], *x.shape[1:])
    except RuntimeError:
        raise RuntimeError(f"virtual_batch_norm: G's first stage gets inputs of shape "
                           f"{tuple(x.shape[1:])}, not a reshaped z of size "
                           f"{z_ref.shape[1]}") from None
    first_stage._vbn_rows.n = z_ref.shape[0]
    return (torch.cat([ref, x], dim=0), *rest)


def _drop_reference(to_out: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return out[to_out._vbn_rows.n:]


def _leave_synthesis(synthesis: nn.Module, args: tuple, out) -> None:
    synthesis._vbn_rows.active, synthesis._vbn_rows.n = False, 0  # also after an exception


@register_trick
class VirtualBatchNormTrick(Trick):
    name = "virtual_batch_norm"
    summary = "G's stages normalised with a fixed reference batch's statistics + the example's own"
    source = "Salimans et al. 2016"
    slots = ("g_normalization",)
    excludes = {
        "batch_norm": "both normalise G's stages; VBN replaces batch norm's dependence on the "
                      "other examples of the batch with a fixed reference batch",
        "stylegan": "StyleGAN's generator normalises with its style modulation, not Stage norms",
    }

    @dataclass(frozen=True)
    class Params:
        ref_size: Optional[int] = None  # None: the training batch size

        def validate(self) -> None:
            if self.ref_size is not None and self.ref_size < 1:
                raise ValueError("ref_size must be >= 1")

    def build(self, nets, ctx):
        G = nets.G
        blocks = stages(G, self.name)
        synthesis = getattr(G, "synthesis", None)
        to_out = getattr(synthesis, "to_out", None)
        if not isinstance(getattr(G, "mapping", None), nn.Identity) or to_out is None:
            raise TrickError(f"{self.name} needs G = synthesis(z) with an Identity mapping and a "
                             f"`synthesis.to_out` output layer")
        if hasattr(blocks[0], REF_BUFFER):
            raise TrickError(f"{self.name}: G already has a reference batch")
        z_dim = getattr(G, "z_dim", None) or ctx.net.z_dim
        n = self.p.ref_size or ctx.batch_size
        gen = torch.Generator().manual_seed(int(ctx.seed) * 1_000_003 + 424_242)
        z_ref = torch.randn(n, z_dim, generator=gen)
        device = next(G.parameters()).device
        rows = _ReferenceRows()
        blocks[0].register_buffer(REF_BUFFER, z_ref.to(device))
        for st in blocks:
            st.attach("norm", VirtualBatchNorm(st.channels, rows=rows), self.name)
        for m in (blocks[0], to_out, synthesis):
            m._vbn_rows = rows
        synthesis.register_forward_pre_hook(_enter_synthesis)  # only flags: leaves the input as is
        blocks[0].register_forward_pre_hook(_prepend_reference)
        to_out.register_forward_hook(_drop_reference)
        synthesis.register_forward_hook(_leave_synthesis, always_call=True)
        return nets
