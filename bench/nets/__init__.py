"""Baseline networks chosen by data kind: MLP for 2-D, DCGAN for images; or a named
architecture (`NetConfig.arch`): PacGAN's 2-D nets."""
from __future__ import annotations

from bench.core.config import NetConfig
from bench.nets.dcgan import dcgan_discriminator, dcgan_generator
from bench.nets.mlp import mlp_discriminator, mlp_generator
from bench.nets.pacgan import pacgan_discriminator, pacgan_generator
from bench.nets.parts import Discriminator, Generator, Stage, Synthesis, init_weights
from bench.trickapi.trick import Nets


def build_nets(net: NetConfig, kind: str, shape: tuple[int, ...]) -> Nets:
    net.check_kind(kind)
    width = net.resolved_width(kind)
    if net.arch == "pacgan":
        G = pacgan_generator(net.z_dim, shape[0])
        D = pacgan_discriminator(shape[0])
    elif kind == "2d":
        G = mlp_generator(net.z_dim, width, net.depth, shape[0], net.activation)
        D = mlp_discriminator(shape[0], width, net.depth, net.activation)
    else:
        G = dcgan_generator(net.z_dim, width, shape)  # type: ignore[arg-type]
        D = dcgan_discriminator(width, shape)  # type: ignore[arg-type]
    init_weights(G, scheme=net.init)
    init_weights(D, scheme=net.init)
    return Nets(G, D)


__all__ = ["build_nets", "Generator", "Discriminator", "Stage", "Synthesis", "init_weights"]
