"""MLP generator and discriminator for 2-D data (ReLU in G, LeakyReLU 0.2 in D)."""
from __future__ import annotations

from torch import nn

from bench.nets.parts import Discriminator, Generator, Stage, Synthesis


def mlp_generator(z_dim: int, width: int, depth: int, out_dim: int) -> Generator:
    blocks = [Stage(nn.Linear(z_dim if i == 0 else width, width), nn.ReLU(), width)
              for i in range(depth)]
    return Generator(Synthesis(blocks, nn.Linear(width, out_dim)), z_dim, (out_dim,))


def mlp_discriminator(in_dim: int, width: int, depth: int) -> Discriminator:
    blocks = [Stage(nn.Linear(in_dim if i == 0 else width, width), nn.LeakyReLU(0.2), width,
                    is_input=(i == 0)) for i in range(depth)]
    return Discriminator(blocks, lambda c: nn.Linear(c, 1), width)
