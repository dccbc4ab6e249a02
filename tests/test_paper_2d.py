"""The `paper-2d` preset: every one of its variants, with the preset's own nets, batch and
optimizers (only the step budget shortened), trains and is scored with the VEEGAN/PacGAN metric."""

import pytest
import torch

from bench.schedule.grid import load_grid
from tests.tiny import scored_in_two_steps

GRID = load_grid("paper-2d")
FIRSTS = {(c.data.name, c.label): c for c in reversed(GRID.cells) if c.seed == 0}


def test_the_preset_is_the_reference_notebooks_setup():
    assert {c.seed for c in GRID.cells} == {0, 1, 2, 3, 4}
    assert {label for _, label in FIRSTS} == {
        "baseline", "unrolled", "minibatch_discrimination", "minibatch_stddev", "wgan_gp",
        "dual_discriminator"}
    for cell in GRID.cells:
        assert (cell.train.steps, cell.train.batch_size) == (25000, 512)
        assert (cell.train.g_optim.lr, cell.train.d_optim.lr, cell.train.g_optim.beta1) == \
            (1e-3, 1e-4, 0.5)
        assert (cell.net.z_dim, cell.net.width, cell.net.depth) == (256, 128, 2)
        assert (cell.net.activation, cell.net.init) == ("tanh", "orthogonal")
    unrolled = next(c for c in GRID.cells if c.label == "unrolled")
    assert unrolled.tricks[0].param_dict.get("k", 5) == 5


@pytest.mark.parametrize("key", sorted(FIRSTS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_variant_trains_and_scores_on_its_own_settings(key, tmp_path):
    torch.manual_seed(0)
    cell = FIRSTS[key]
    record = scored_in_two_steps(cell, tmp_path)
    assert record.status == "done", record.reason
    assert {"modes", "high_quality", "reverse_kl"} <= set(record.metrics)
    assert record.nets["g_params"] > 0 and record.nets["d_params"] > 0
    if key[1] != "wgan_gp":  # wgan_gp keeps its paper optimizer (Adam 1e-4, betas (0, 0.9))
        assert (record.optim["G"]["lr"], record.optim["D"]["lr"]) == (1e-3, 1e-4)
