"""Path-length regularisation of G (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN", StyleGAN2, section 3.2; defaults from its official code).

Every `interval` steps (lazy regularisation as in StyleGAN2's `training_loop.py`: a separate G
update whose loss is the penalty multiplied by `interval`, with G's Adam lr and betas corrected
by c = interval / (interval + 1), lr*c and beta**c, for the whole run; the loop does the update
and the correction through the hooks `lazy_interval` and `lazy_penalty`; `interval` 1 adds the
penalty into every G update instead), a fresh batch of batch_size / `batch_shrink` latents z is drawn and G(z) is run
once; w is the tensor `G.synthesis` receives (read with a forward pre-hook, so it is the
mapping's output after G's own reshaping for its first layer, or StyleGAN's per-layer ws after
style mixing, as in the official code), images = G.synthesis(w). With
y ~ N(0, I) / sqrt(pixels per image), J_w^T y = grad_w sum(images * y) and the penalty is
    weight * E (||J_w^T y|| - a)^2,
where a is an exponential running mean of ||J_w^T y|| (decay 0.01, updated before use as in the
official code). With the baseline's Identity mapping, w = z. For per-layer ws [B, n, w_dim] the
squared norm is averaged over the n layers as in StyleGAN2. The gradient flows into the mapping
too. The running mean is trick state (checkpointed). Logged as `g_pl` (unscaled).

`setting = "2d"`: weight 0.02 where it is at StyleGAN2's image value 2 (other given values are
kept; the cell id records the weight that ran). StyleGAN2 publishes no 2-D setting, so the 2-D
weight was chosen on tuning seeds 100-102 (never evaluation seeds), batch 256, MLP 3x128,
Adam(1e-3, 0.5), 1,200 steps (where the baseline has learned ring8), by mean reverse KL:

    weight      ring8 modes (seeds 100/101/102), mean rKL    grid25 modes, mean rKL
    baseline    8 / 6 / 7   0.50                              11 / 1 / 5   2.15
    2           0 / 0 / 0   2.08 (= ln 8: no mode)            0 / 0 / 0    3.22 (= ln 25)
    0.2         0 / 0 / 6   1.60                              2 / 0 / 1    2.99
    0.02        8 / 1 / 5   1.01                              7 / 2 / 4    2.15
    0.002       4 / 1 / 5   1.29                              4 / 2 / 3    2.46

made by `ganbench run --grid benchmarks/calibration/path_length_2d.toml` (measured under load;
3 seeds, so the ranking of 0.02 against 0.002 is not certain, the collapse at 2 is). At the image weight every 2-D cell lost every
mode. The gradient ratio r = |grad of the lazy update's loss| / |grad of G's adversarial loss|
(`benchmarks/penalty_ratio.py path_length weight 2 0.2 0.02 --seed 100 --steps 1000 --every 4`,
ring8) is a median 0.11 (90th percentile 1.2) at weight 2 and 0.11 (0.42) at 0.02: the
penalty does not swamp G's gradient on average, but at 2 it does on the worst tenth of lazy
updates, and a 2-D ring or grid needs a G whose Jacobian norm varies strongly with z (stretched
between modes, compressed on them), which is what the penalty pulls towards constant. Even
0.02 is no better than the baseline here: on 2-D data this trick is expected to cost modes.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from bench.core.config import OPTIONAL
from tricks import Trick, register_trick

IMAGE_WEIGHT, TWO_D_WEIGHT = 2.0, 0.02  # StyleGAN2's (images); chosen on tuning seeds (2-D data)


def _pixels(images: torch.Tensor) -> int:
    """Pixels per image (H * W) for [B, C, H, W]; the feature count for vector outputs."""
    return images.shape[2] * images.shape[3] if images.dim() == 4 else images[0].numel()


@register_trick
class PathLength(Trick):
    name = "path_length"
    # 2: no NaN gradient when a sample has J = 0 (dead ReLUs); 3: a separate lazy update with
    # Adam's correction, as StyleGAN2 (was added into the G loss of every `interval`-th step)
    version = 3
    summary = ("StyleGAN2 path-length regularisation of G (weight 2, every 4 steps, half batch; "
               "setting=2d: weight 0.02, chosen on tuning seeds)")
    source = "Karras et al. 2020 (StyleGAN2)"

    @dataclass(frozen=True)
    class Params:
        weight: float = IMAGE_WEIGHT
        interval: int = 4
        decay: float = 0.01  # running-mean update rate of the target length a
        batch_shrink: int = 2  # the penalty batch is batch_size // batch_shrink
        # added after cells were stored: enters the cell id only when not "image"
        setting: Literal["image", "2d"] = field(default="image", metadata=OPTIONAL)

        def __post_init__(self) -> None:
            if self.setting == "2d" and self.weight == IMAGE_WEIGHT:
                object.__setattr__(self, "weight", TWO_D_WEIGHT)

        def validate(self) -> None:
            if self.weight < 0 or self.interval < 1 or self.batch_shrink < 1:
                raise ValueError("need weight >= 0, interval >= 1, batch_shrink >= 1")
            if not 0.0 < self.decay <= 1.0:
                raise ValueError("need 0 < decay <= 1")

    def step_cost(self) -> float:
        # a double backward through G every `interval` steps
        return (2 + 1 / self.p.interval) / 2

    def __init__(self, params=None):
        super().__init__(params)
        self._mean = 0.0

    def _lengths(self, G: nn.Module, z: torch.Tensor) -> torch.Tensor:
        """||J_w^T y|| per sample, differentiable w.r.t. G's parameters."""
        z = z.requires_grad_(True)  # so w requires grad even when the mapping is Identity
        seen: list[torch.Tensor] = []
        synthesis = getattr(G, "synthesis", None)
        hook = (synthesis.register_forward_pre_hook(lambda m, args: seen.extend(args[:1]))
                if isinstance(synthesis, nn.Module) else None)
        try:
            images = G(z)
        finally:
            if hook is not None:
                hook.remove()
        w = seen[0] if seen else z
        y = torch.randn_like(images) / math.sqrt(_pixels(images))
        (grad,) = torch.autograd.grad((images * y).sum(), w, create_graph=True)
        if grad.dim() == 3:  # per-layer ws [B, num_ws, w_dim]: StyleGAN2's mean over layers
            sq = grad.square().sum(2).mean(1)
        else:  # w [B, w_dim], or reshaped for a conv input ([B, w_dim, 1, 1])
            sq = grad.square().flatten(1).sum(1)
        # clamp: a sample with all-dead ReLUs has J = 0, and sqrt's gradient at 0 is inf (-> NaN)
        return sq.clamp_min(1e-12).sqrt()

    def penalty(self, ctx):
        if ctx.phase != "g" or self.p.interval > 1:
            return {}
        return self.lazy_penalty(ctx)

    def lazy_interval(self, net):
        return self.p.interval if net == "G" else 1

    def lazy_penalty(self, ctx):
        if ctx.phase != "g":
            return {}
        batch = ctx.z.shape[0]
        n = max(min(2, batch), batch // self.p.batch_shrink)  # >= 2 so batch norm in G works
        z = torch.randn(n, *ctx.z.shape[1:], device=ctx.z.device)
        lengths = self._lengths(ctx.nets.G, z)
        self._mean += self.p.decay * (lengths.detach().mean().item() - self._mean)
        value = ((lengths - self._mean) ** 2).mean()
        return {"pl": self.p.weight * value}

    def state_dict(self):
        return {"mean": self._mean}

    def load_state_dict(self, state):
        self._mean = float(state.get("mean", 0.0))
