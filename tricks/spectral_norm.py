"""Spectral normalization: every conv/linear weight of D is divided by its largest singular value
(estimated by power iteration), making each layer 1-Lipschitz. Miyato et al. 2018,
"Spectral Normalization for Generative Adversarial Networks". Option `on_g` also applies it to G
(as SAGAN does, Zhang et al. 2019)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from tricks import REPARAMETRIZE, Trick, register_trick


def apply_spectral_norm(module: nn.Module, n_power_iterations: int) -> None:
    for m in list(module.modules()):
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            spectral_norm(m, n_power_iterations=n_power_iterations)
        elif isinstance(m, nn.ConvTranspose2d):  # output channels are dim 1 there
            spectral_norm(m, n_power_iterations=n_power_iterations, dim=1)


@register_trick
class SpectralNorm(Trick):
    name = "spectral_norm"
    summary = "spectral normalization of every conv/linear weight in D (option: G too)"
    source = "Miyato et al. 2018"
    build_order = REPARAMETRIZE  # after other tricks inserted their layers

    @dataclass(frozen=True)
    class Params:
        on_g: bool = False
        n_power_iterations: int = 1

        def validate(self) -> None:
            if self.n_power_iterations < 1:
                raise ValueError("n_power_iterations must be >= 1")

    def build(self, nets, ctx):
        apply_spectral_norm(nets.D, self.p.n_power_iterations)
        if self.p.on_g:
            apply_spectral_norm(nets.G, self.p.n_power_iterations)
        return nets
