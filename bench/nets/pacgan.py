"""PacGAN's 2-D networks (Lin et al. 2018, "PacGAN: The power of two samples in generative
adversarial networks"), from the authors' synthetic-data code, github.com/fjxmlzn/PacGAN,
`synthetic_data_experiments/2DRing_GAN&PacGAN/pacgan_task.py` (`create_model_brick`) and its
`config.py` (the grid's files are the same apart from the data):

- G ("decoder"): blocks `MLP(dims=[num_zdim=2, 400, 400, 400, 400, num_xdim=2])`, each of the four
  hidden layers `Linear (no bias) -> BatchNormalization -> Rectifier`, then a linear output layer
  with a bias (`use_bias=False`, and `decoder.linear_transformations[-1].use_bias = True`).
  blocks' BatchNormalization: epsilon 1e-4 (mila-iqia/blocks `blocks/bricks/bn.py`), scale 1,
  shift 0; the task keeps population statistics as a moving average with weight 0.05
  (`bn_updates = [(p, m * 0.05 + p * 0.95) ...]`), hence momentum 0.05 here.
- D ("discriminator"): three `LinearMaxout(output_dim=200, num_pieces=5)` layers (a linear map to
  200 x 5 units, then the max over each group of 5 consecutive units) and a `Linear(200, 1)`
  output (a logit). Its input width is num_xdim x num_packing: packing (tricks/packing.py)
  widens the first layer.
- Init: every weight N(0, 0.02) (`IsotropicGaussian(0.02)`), biases 0 (`Constant(0.0)`): the
  suite's "normal" init.

Differences that remain (named in bench/grids/pacgan-t1.toml too): torch's BatchNorm1d keeps a
running *variance* (unbiased) where blocks averages the minibatch *standard deviation*; both
are only used when G is sampled for scoring.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.nets.parts import Discriminator, Generator, Stage, Synthesis

G_WIDTH, G_DEPTH = 400, 4
D_WIDTH, D_DEPTH, MAXOUT_PIECES = 200, 3, 5
BN_EPS, BN_MOMENTUM = 1e-4, 0.05


class Maxout(nn.Module):
    """The max over each group of `pieces` consecutive features: [..., n * pieces] -> [..., n]
    (blocks' `Maxout`, which reshapes the last axis to (n, pieces) and takes the max)."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, self.pieces)).amax(dim=-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def pacgan_generator(z_dim: int, out_dim: int) -> Generator:
    blocks = []
    for i in range(G_DEPTH):
        stage = Stage(nn.Linear(z_dim if i == 0 else G_WIDTH, G_WIDTH, bias=False), nn.ReLU(),
                      G_WIDTH)
        stage.norm = nn.BatchNorm1d(G_WIDTH, eps=BN_EPS, momentum=BN_MOMENTUM)
        blocks.append(stage)
    return Generator(Synthesis(blocks, nn.Linear(G_WIDTH, out_dim)), z_dim, (out_dim,))


def linear_maxout(in_dim: int, out_dim: int = D_WIDTH, pieces: int = MAXOUT_PIECES
                  ) -> nn.Sequential:
    """blocks' LinearMaxout: Linear(in, out x pieces), then Maxout(pieces)."""
    return nn.Sequential(nn.Linear(in_dim, out_dim * pieces), Maxout(pieces))


def pacgan_discriminator(in_dim: int) -> Discriminator:
    blocks = [Stage(linear_maxout(in_dim if i == 0 else D_WIDTH), nn.Identity(), D_WIDTH,
                    is_input=(i == 0)) for i in range(D_DEPTH)]
    return Discriminator(blocks, lambda c: nn.Linear(c, 1), D_WIDTH)
