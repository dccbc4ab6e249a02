"""MLP generator and discriminator for 2-D data: ReLU in G and LeakyReLU 0.2 in D, or tanh in
both (`activation="tanh"`, as the unrolled-GAN / VEEGAN reference notebooks)."""
from __future__ import annotations

from torch import nn

from bench.nets.parts import Discriminator, Generator, Stage, Synthesis


def _act(activation: str, net: str) -> nn.Module:
    if activation == "tanh":
        return nn.Tanh()
    return nn.ReLU() if net == "G" else nn.LeakyReLU(0.2)


def mlp_generator(z_dim: int, width: int, depth: int, out_dim: int,
                  activation: str = "default") -> Generator:
    blocks = [Stage(nn.Linear(z_dim if i == 0 else width, width), _act(activation, "G"), width)
              for i in range(depth)]
    return Generator(Synthesis(blocks, nn.Linear(width, out_dim)), z_dim, (out_dim,))


def mlp_discriminator(in_dim: int, width: int, depth: int,
                      activation: str = "default") -> Discriminator:
    blocks = [Stage(nn.Linear(in_dim if i == 0 else width, width), _act(activation, "D"), width,
                    is_input=(i == 0)) for i in range(depth)]
    return Discriminator(blocks, lambda c: nn.Linear(c, 1), width)
