"""Style-based generator (StyleGAN2, Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN"; details from the official stylegan2-ada-pytorch code): mapping MLP z -> w, a learned
constant input, per-layer styles from w through learned affine maps, modulated 3x3 convolutions
with weight demodulation (or StyleGAN1's AdaIN, Karras et al. 2019), per-layer noise with learned
per-channel strengths (StyleGAN1's per-feature scaling; StyleGAN2 uses one scalar), and the
StyleGAN2 'skip' output: a modulated (not demodulated) 1x1 toRGB at every resolution, the image
so far upsampled and added.

Simplifications (documented): 2x upsampling is bilinear (align_corners=False), which for a factor
of 2 is the separable [1, 3, 3, 1]/4 filter of the official upfirdn2d with edge replication; the
up-convolution is upsample-then-conv3x3 rather than a transposed conv followed by the blur.

Layout: `G.blocks[k]` is a `StyleStage` at plan[k] (a `bench.nets.parts.Stage` whose `main` is a
`StyleBlock` of 1 (base) or 2 style layers, `act` Identity since the layers apply their own leaky
ReLU; `norm`, `dropout`, `post` are free attachment points). Layer i of the synthesis reads
style row i of ws [B, num_ws, w_dim]; the toRGB of block k reads the row after its block's last
conv (StyleGAN2's indexing), so num_ws = 2 * len(blocks).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from bench.nets.parts import Generator, Stage, Synthesis
from tricks._lib.karras_layers import (SQRT2, PixelNorm, channel_plan, linear, resolution_plan,
                                       upsample)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor,
                     demodulate: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """x [B, Cin, H, W], weight [Cout, Cin, k, k], styles [B, Cin]: w'_ijk = s_i w_ijk, and with
    demodulation w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps) (StyleGAN2 eq. 1 and 3); 'same'
    padding. Computed as the official code's non-fused path (scale the input channels by s,
    convolve with the shared weight, scale each output channel by its demodulation coefficient),
    which equals the per-sample weights exactly and is much faster on CPU than a grouped conv."""
    b, c_in = x.shape[:2]
    out = F.conv2d(x * styles.view(b, c_in, 1, 1), weight, padding=weight.shape[-1] // 2)
    if demodulate:
        # sum_ik (s_i w_jik)^2 = sum_i s_i^2 (sum_k w_jik^2)
        dcoefs = torch.rsqrt(styles.square() @ weight.square().sum(dim=(2, 3)).t() + eps)
        out = out * dcoefs.view(b, -1, 1, 1)
    return out


def _weight(c_out: int, c_in: int, k: int, equalized: bool) -> tuple[nn.Parameter, float]:
    """A conv weight and its run-time gain: N(0, 1) x 1/sqrt(fan_in) (equalized) or N(0, 1/fan_in)
    x 1 (He-style init); demodulation makes the scale irrelevant to the forward pass."""
    he = 1.0 / math.sqrt(c_in * k * k)
    return nn.Parameter(torch.randn(c_out, c_in, k, k) * (1.0 if equalized else he)), \
        (he if equalized else 1.0)


class StyleLayer(nn.Module):
    """[2x upsample ->] 3x3 conv styled by w -> + noise * per-channel strength -> + bias ->
    leaky ReLU 0.2 (x sqrt 2, StyleGAN2). modconv: the style scales the input channels of the
    weight (affine bias init 1) and the weight is demodulated. adain (StyleGAN1): plain conv, then
    after the activation instance norm and x * (1 + ys) + yb with (ys, yb) = affine(w)."""

    def __init__(self, c_in: int, c_out: int, w_dim: int, resolution: int, *, up: bool,
                 mode: str, equalized: bool):
        super().__init__()
        self.up, self.mode = up, mode
        self.weight, self.weight_gain = _weight(c_out, c_in, 3, equalized)
        if mode == "modconv":
            self.affine = linear(w_dim, c_in, equalized=equalized, gain=1.0, bias_init=1.0)
        else:
            self.affine = linear(w_dim, 2 * c_out, equalized=equalized, gain=1.0)
        self.noise_strength = nn.Parameter(torch.zeros(c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        # eval-mode noise (StyleGAN's noise_mode='const'), so samples are a function of z alone
        self.register_buffer("noise_const", torch.randn(1, 1, resolution, resolution))

    def forward(self, x: torch.Tensor, w: torch.Tensor,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        if self.up:
            x = upsample(x, 2, "bilinear")
        weight = self.weight * self.weight_gain
        if self.mode == "modconv":
            x = modulated_conv2d(x, weight, self.affine(w))
        else:
            x = F.conv2d(x, weight, padding=1)
        if noise is None:
            noise = (torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device) if self.training
                     else self.noise_const)
        x = x + noise * self.noise_strength.view(1, -1, 1, 1)
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * SQRT2
        if self.mode == "adain":
            ys, yb = self.affine(w).view(x.shape[0], 2, -1, 1, 1).unbind(1)
            x = F.instance_norm(x, eps=1e-8) * (1 + ys) + yb
        return x


class ToRGB(nn.Module):
    """Modulated 1x1 conv without demodulation, plus bias; linear output (StyleGAN2)."""

    def __init__(self, c_in: int, img_channels: int, w_dim: int, equalized: bool):
        super().__init__()
        self.affine = linear(w_dim, c_in, equalized=equalized, gain=1.0, bias_init=1.0)
        self.weight, self.weight_gain = _weight(img_channels, c_in, 1, equalized)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        y = modulated_conv2d(x, self.weight * self.weight_gain, self.affine(w), demodulate=False)
        return y + self.bias.view(1, -1, 1, 1)


class StyleBlock(nn.Module):
    def __init__(self, layers: list[StyleLayer]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x, ws, noise=None):
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], None if noise is None else noise[i])
        return x


class StyleStage(Stage):
    """A Stage whose main is a StyleBlock: forward(x, ws, noise) instead of forward(x)."""

    def __init__(self, block: StyleBlock, channels: int, resolution: int):
        super().__init__(block, nn.Identity(), channels, resolution)

    def forward(self, x, ws, noise=None):  # type: ignore[override]
        return self.post(self.dropout(self.act(self.norm(self.main(x, ws, noise)))))


class StyleSynthesis(Synthesis):
    """forward(w) with w [B, w_dim] (every layer the same style) or ws [B, num_ws, w_dim];
    `noise`: optional list of one [B or 1, 1, H, W] tensor per style layer (tests, analysis)."""

    def __init__(self, blocks: list[StyleStage], to_rgb: list[ToRGB], const: torch.Tensor,
                 w_dim: int, output: str):
        super().__init__(blocks, to_rgb[-1])
        self.to_rgb_low = nn.ModuleList(to_rgb[:-1])
        self.const = nn.Parameter(const)
        self.w_dim, self.num_ws, self.output = w_dim, 2 * len(blocks), output

    @property
    def num_layers(self) -> int:
        return self.num_ws - 1

    def forward(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        ws = w if w.dim() == 3 else w.unsqueeze(1).expand(-1, self.num_ws, -1)
        x = self.const.unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
        img, layer = None, 0
        for k, block in enumerate(self.blocks):
            n = len(block.main.layers)
            x = block(x, ws[:, layer:layer + n], None if noise is None else noise[layer:layer + n])
            layer += n
            rgb = (self.to_out if k == len(self.blocks) - 1 else self.to_rgb_low[k])
            y = rgb(x, ws[:, layer])
            img = y if img is None else upsample(img, 2, "bilinear") + y
        return torch.tanh(img) if self.output == "tanh" else img


class MappingNetwork(nn.Module):
    """z -> pixel norm -> `layers` x (linear -> leaky ReLU 0.2), width w_dim, with the learning-rate
    multiplier `lr_mul` (StyleGAN: 0.01) on every layer."""

    def __init__(self, z_dim: int, w_dim: int, layers: int, lr_mul: float, equalized: bool):
        super().__init__()
        mods: list[nn.Module] = [PixelNorm()]
        for i in range(layers):
            mods += [linear(z_dim if i == 0 else w_dim, w_dim, equalized=equalized, lr_mul=lr_mul),
                     nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*mods)
        self.z_dim, self.w_dim = z_dim, w_dim

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class StyleGenerator(Generator):
    """G(z) = synthesis(mapping(z)); in train mode, with probability `mixing_prob`, the styles from
    a random crossover layer on come from a second latent (style mixing regularisation)."""

    def __init__(self, mapping: MappingNetwork, synthesis: StyleSynthesis,
                 out_shape: tuple[int, ...], mixing_prob: float):
        super().__init__(synthesis, mapping.z_dim, out_shape)
        self.mapping, self.w_dim, self.mixing_prob = mapping, mapping.w_dim, mixing_prob

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        w = self.mapping(z)
        if not self.training or self.mixing_prob <= 0.0:
            return self.synthesis(w)
        n = self.synthesis.num_ws
        ws = w.unsqueeze(1).repeat(1, n, 1)
        if float(torch.rand(())) < self.mixing_prob:
            cutoff = int(torch.randint(1, n, ()))
            ws[:, cutoff:] = self.mapping(torch.randn_like(z)).unsqueeze(1)
        return self.synthesis(ws)


def style_generator(z_dim: int, width: int, shape: tuple[int, int, int], *, mapping_layers: int,
                    mapping_lr_mul: float, mode: str, mixing_prob: float, equalized: bool,
                    output: str) -> StyleGenerator:
    c, res, _ = shape
    plan = resolution_plan(res)
    ch = channel_plan(width, len(plan))
    w_dim, eq = z_dim, equalized
    blocks, to_rgb = [], []
    for k, r in enumerate(plan):
        if k == 0:
            layers = [StyleLayer(ch[0], ch[0], w_dim, r, up=False, mode=mode, equalized=eq)]
        else:
            layers = [StyleLayer(ch[k - 1], ch[k], w_dim, r, up=True, mode=mode, equalized=eq),
                      StyleLayer(ch[k], ch[k], w_dim, r, up=False, mode=mode, equalized=eq)]
        blocks.append(StyleStage(StyleBlock(layers), ch[k], r))
        to_rgb.append(ToRGB(ch[k], c, w_dim, eq))
    const = torch.randn(ch[0], plan[0], plan[0])
    synthesis = StyleSynthesis(blocks, to_rgb, const, w_dim, output)
    mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul, eq)
    return StyleGenerator(mapping, synthesis, shape, mixing_prob)
