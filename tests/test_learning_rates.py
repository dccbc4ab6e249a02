"""Learning-rate confounds (issue 10 item 4): ttur is relative to the cell's base LR; wgan_gp keeps
its paper optimizer by default and can use the cell's."""
from __future__ import annotations

import math

import pytest

from bench.core.config import OptimConfig
from bench.schedule.grid import full_spec
from tests.tiny import tiny_trainer


@pytest.mark.parametrize("base", [1e-3, 2e-5])
@pytest.mark.parametrize("ratio", [4.0, 9.0])
def test_ttur_ratio_around_the_cells_base_lr(base, ratio):
    tr = tiny_trainer("ring8", [("ttur", {"ratio": ratio})], steps=1, lr=base)
    tr.train_step()
    d_lr, g_lr = tr.d_opt.param_groups[0]["lr"], tr.g_opt.param_groups[0]["lr"]
    assert d_lr / g_lr == pytest.approx(ratio)
    assert math.sqrt(d_lr * g_lr) == pytest.approx(base)  # geometric mean at the base LR
    assert d_lr == pytest.approx(base * math.sqrt(ratio))
    assert tr.d_opt.param_groups[0]["betas"] == (0.5, 0.999) == tr.g_opt.param_groups[0]["betas"]
    assert tr.make_record("done").optim["D"]["lr"] == pytest.approx(d_lr)


def test_ttur_is_version_2():
    assert full_spec("ttur").version == 2 and full_spec("ttur").param_dict == {"ratio": 4.0}


@pytest.mark.parametrize("base", [1e-3, 3e-4])
def test_wgan_gp_paper_optimizer_by_default_and_the_cells_on_request(base):
    paper = tiny_trainer("ring8", ["wgan_gp"], steps=1, lr=base)
    assert paper.d_spec == paper.g_spec == OptimConfig(lr=1e-4, beta1=0.0, beta2=0.9)
    cell = tiny_trainer("ring8", [("wgan_gp", {"optimizer": "cell"})], steps=1, lr=base)
    assert cell.d_spec == cell.g_spec == OptimConfig(lr=base)  # cell's lr and betas (0.5, 0.999)
    cell.train_step()
    assert cell.d_opt.param_groups[0]["lr"] == base
    assert cell.d_opt.param_groups[0]["betas"] == (0.5, 0.999)
    assert cell.n_d == 5  # the rest of the method is unchanged


def test_wgan_gp_optimizer_option_keeps_existing_cell_ids():
    assert "optimizer" not in full_spec("wgan_gp").param_dict
    assert full_spec("wgan_gp", {"optimizer": "cell"}).param_dict["optimizer"] == "cell"
    assert full_spec("wgan_gp").version == 1


def test_ring8_tuned_tunes_wgan_gp_at_the_cells_lr_and_shares_the_rest_with_cpu_default():
    """The tuned-LR preset would otherwise 'tune' wgan_gp at three lrs its paper optimizer
    ignores; every other 1e-3 cell is cpu-default's own (trained once in a shared store)."""
    from bench.schedule.grid import load_grid

    tuned = [c for c in load_grid("ring8-tuned").cells if c.data.name == "ring8"]
    default = {c.cell_id for c in load_grid("cpu-default").cells}
    wgan = [c for c in tuned if c.label.startswith("wgan_gp")]
    assert sorted({c.train.g_optim.lr for c in wgan}) == [5e-4, 1e-3, 2e-3]
    assert all(c.tricks[0].param_dict["optimizer"] == "cell" for c in wgan)
    others = [c for c in tuned if c.train.g_optim.lr == 1e-3 and c not in wgan]
    assert others and all(c.cell_id in default for c in others)
    assert not any(c.cell_id in default for c in wgan)
