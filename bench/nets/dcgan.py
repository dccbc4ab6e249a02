"""DCGAN-style conv nets for 16, 28 and 32 px, following the DCGAN rules: strided (transposed)
convs and no pooling, ReLU in G with a tanh output, LeakyReLU 0.2 in D, kernel 4 with stride 2
(divisible). No normalization layers: batch norm is a trick.

16 px: 4 -> 8 -> 16; 32 px: 4 -> 8 -> 16 -> 32; 28 px: 7 -> 14 -> 28.
"""
from __future__ import annotations

from torch import nn

from bench.nets.parts import Discriminator, Generator, Stage, Synthesis


def _plan(resolution: int) -> tuple[int, int]:
    """(base resolution, number of stride-2 doublings) for a supported output resolution."""
    plans = {16: (4, 2), 28: (7, 2), 32: (4, 3)}
    if resolution not in plans:
        raise ValueError(f"DCGAN nets support resolutions {sorted(plans)}, got {resolution}")
    return plans[resolution]


def dcgan_generator(z_dim: int, width: int, shape: tuple[int, int, int]) -> Generator:
    channels, res, _ = shape
    base, ups = _plan(res)
    # channels halve as resolution doubles; `width` is the channel count of the last feature map
    ch = [width * 2 ** (ups - 1 - i) for i in range(ups)]
    blocks = [Stage(nn.ConvTranspose2d(z_dim, ch[0], base, 1, 0, bias=False), nn.ReLU(), ch[0], base)]
    for i in range(1, ups):
        blocks.append(Stage(nn.ConvTranspose2d(ch[i - 1], ch[i], 4, 2, 1, bias=False), nn.ReLU(),
                            ch[i], base * 2 ** i))
    to_out = nn.Sequential(nn.ConvTranspose2d(ch[-1], channels, 4, 2, 1), nn.Tanh())
    return Generator(Synthesis(blocks, to_out, in_shape=(z_dim, 1, 1)), z_dim, shape)


def dcgan_discriminator(width: int, shape: tuple[int, int, int]) -> Discriminator:
    channels, res, _ = shape
    base, downs = _plan(res)
    ch = [width * 2 ** i for i in range(downs)]
    blocks = []
    for i in range(downs):
        blocks.append(Stage(nn.Conv2d(channels if i == 0 else ch[i - 1], ch[i], 4, 2, 1, bias=False),
                            nn.LeakyReLU(0.2), ch[i], res // 2 ** (i + 1), is_input=(i == 0)))
    return Discriminator(blocks, lambda c: nn.Conv2d(c, 1, base, 1, 0), ch[-1])
