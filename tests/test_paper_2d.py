"""The `paper-2d` preset: the reference notebook's nets, batch and budget at the learning setting
(G lr 1e-4, D's), each trick in its authors' setting, and every one of its variants, with the
preset's own nets, batch and optimizers (only the step budget shortened), trains and is scored
with the VEEGAN/PacGAN metric."""

import pytest
import torch

from bench.schedule.grid import load_grid
from tests.tiny import scored_in_two_steps

GRID = load_grid("paper-2d")
FIRSTS = {(c.data.name, c.label): c for c in reversed(GRID.cells) if c.seed == 0}


def test_the_preset_is_the_reference_notebooks_setup_at_the_learning_g_lr():
    assert {c.seed for c in GRID.cells} == {0, 1, 2, 3, 4}
    assert {label for _, label in FIRSTS} == {
        "baseline", "unrolled", "minibatch_discrimination", "minibatch_stddev", "wgan_gp",
        "dual_discriminator"}
    for cell in GRID.cells:
        assert (cell.train.steps, cell.train.batch_size) == (25000, 512)
        # G lr 1e-4, not the notebook's 1e-3: where the baseline learns (the preset's header)
        assert (cell.train.g_optim.lr, cell.train.d_optim.lr, cell.train.g_optim.beta1) == \
            (1e-4, 1e-4, 0.5)
        assert (cell.net.z_dim, cell.net.width, cell.net.depth) == (256, 128, 2)
        assert (cell.net.activation, cell.net.init) == ("tanh", "orthogonal")
    for unrolled in (c for c in GRID.cells if c.label == "unrolled"):
        assert unrolled.tricks[0].param_dict.get("k", 5) == 5
        assert unrolled.tricks[0].param_dict["g_objective"] == "value"  # Metz et al.'s
    for wgan in (c for c in GRID.cells if c.label == "wgan_gp"):  # gan_toy.py's lambda, betas
        p = wgan.tricks[0].param_dict
        assert (p["setting"], p["gp_weight"], p["beta1"], p["beta2"]) == ("toy", 0.1, 0.5, 0.9)


@pytest.mark.parametrize("key", sorted(FIRSTS), ids=lambda k: f"{k[0]}-{k[1]}")
def test_every_variant_trains_and_scores_on_its_own_settings(key, tmp_path):
    torch.manual_seed(0)
    cell = FIRSTS[key]
    record = scored_in_two_steps(cell, tmp_path)
    assert record.status == "done", record.reason
    assert {"modes", "high_quality", "reverse_kl"} <= set(record.metrics)
    assert record.nets["g_params"] > 0 and record.nets["d_params"] > 0
    assert (record.optim["G"]["lr"], record.optim["D"]["lr"]) == (1e-4, 1e-4)
    if key[1] == "wgan_gp":  # its toy optimizer: Adam(1e-4, betas (0.5, 0.9)) for both nets
        assert (record.optim["G"]["beta1"], record.optim["G"]["beta2"]) == (0.5, 0.9)
