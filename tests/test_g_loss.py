"""G's baseline loss (`train.g_loss`): the minimax form log(1 - D(G(z))) beside the default
non-saturating -log D(G(z)) (Goodfellow et al. 2014), from a grid key or `train --g-loss`."""
from __future__ import annotations

import dataclasses
import pytest
import torch

from bench.cli import main, make_parser
from bench.cli.cmd_train import build_cell
from bench.core.config import G_LOSS_NAMES, ConfigError, TrainConfig
from bench.core.flags import detect_flags
from bench.schedule.grid import load_grid
from bench.train import Trainer
from bench.trickapi.losses import G_LOSSES, minimax_loss, non_saturating_loss
from bench.trickapi.trick import StepContext
from tests.tiny import device_under_test, tiny_cell


def ctx(phase: str, d_fake: torch.Tensor) -> StepContext:
    n = len(d_fake)
    return StepContext(phase=phase, step=0, steps=1, nets=None, critic=None,
                       real=torch.zeros(n, 2), z=torch.zeros(n, 2), fake=torch.zeros(n, 2),
                       real_in=torch.zeros(n, 2), d_real=torch.full((n, 1), 2.0), d_fake=d_fake,
                       real_t=torch.full((n, 1), 0.9), fake_t=torch.full((n, 1), 0.1))


def test_config_names_match_the_loss_functions():
    assert set(G_LOSS_NAMES) == set(G_LOSSES)


def test_minimax_g_loss_is_log_one_minus_d_and_saturates_where_ns_does_not():
    logits = torch.tensor([[-8.0], [0.0], [3.0]], requires_grad=True)
    loss = minimax_loss(ctx("g", logits))
    p = torch.sigmoid(logits.detach())
    assert loss.item() == pytest.approx(torch.log1p(-p).mean().item(), rel=1e-6)
    (grad,) = torch.autograd.grad(loss, logits)
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l) / n: vanishes where D confidently rejects a fake
    assert torch.allclose(grad, -p / 3, atol=1e-7)
    assert abs(grad[0].item()) < 1e-3 / 3
    ns_logits = logits.detach().clone().requires_grad_(True)
    (ns_grad,) = torch.autograd.grad(non_saturating_loss(ctx("g", ns_logits)), ns_logits)
    assert torch.allclose(ns_grad, -(1 - p) / 3, atol=1e-7)  # ~ -1/n there: the reason for NS
    assert abs(ns_grad[0].item()) > 0.99 / 3


def test_d_loss_is_the_same_for_both():
    logits = torch.tensor([[-1.0], [0.5]])
    assert minimax_loss(ctx("d", logits)).item() == non_saturating_loss(ctx("d", logits)).item()


def cell_with(g_loss: str, **kw):
    base = tiny_cell("ring8", steps=4, **kw)
    return dataclasses.replace(base, train=dataclasses.replace(base.train, g_loss=g_loss))


def test_default_keeps_cell_ids_and_minimax_is_a_new_cell():
    base = tiny_cell("ring8", steps=4)
    assert "g_loss" not in base.to_dict()["train"]
    assert cell_with("non_saturating").cell_id == base.cell_id
    minimax = cell_with("minimax")
    assert minimax.cell_id != base.cell_id and minimax.to_dict()["train"]["g_loss"] == "minimax"
    with pytest.raises(ConfigError, match="g_loss must be one of non_saturating, minimax"):
        TrainConfig(g_loss="wasserstein")


def test_the_trainer_uses_the_cells_g_loss_and_a_trick_loss_overrides_it():
    device = device_under_test()
    curves = {}
    for name in G_LOSS_NAMES:
        tr = Trainer(cell_with(name), device=device, progress=False)
        tr.train()
        curves[name] = [v for _, v in tr.curves["g_adv"]]
    assert all(v > 0 for v in curves["non_saturating"])  # -log D > 0
    assert all(v < 0 for v in curves["minimax"])  # log(1 - D) < 0
    wgan = dataclasses.replace(cell_with("minimax"), tricks=tiny_cell("ring8", ["wgan_gp"]).tricks)
    assert Trainer(wgan, device=device, progress=False).loss_fn not in G_LOSSES.values()


def test_minimax_keeps_the_d_collapse_flag_but_not_g_runaway():
    collapsed = {"d_adv": [[i * 10, 0.01] for i in range(5)],
                 "g_adv": [[i * 10, 6.0 + i] for i in range(5)]}
    assert {f["flag"] for f in detect_flags(collapsed)} == {"d_collapse", "g_runaway"}
    assert {f["flag"] for f in detect_flags(collapsed, g_nonsaturating=False)} == {"d_collapse"}


def test_grid_key_and_train_option(tmp_path, capsys):
    data = '[[data]]\nname = "ring8"\nsteps = 5\nbatch_size = 16\nwidth = 8\n'
    path = tmp_path / "g.toml"
    path.write_text('design = "baseline"\n' + data + 'g_loss = "minimax"\n')
    (cell,) = load_grid(str(path)).cells
    assert cell.train.g_loss == "minimax"
    bad = tmp_path / "b.toml"
    bad.write_text(data + 'g_loss = "hinge"\n')
    assert main(["run", "--grid", str(bad), "--store", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "[[data]] #1 g_loss must be one of non_saturating, minimax, got 'hinge'" in err
    assert len(err.strip().splitlines()) == 1
    args = make_parser().parse_args(["train", "--dataset", "ring8", "--g-loss", "minimax"])
    assert build_cell(args).train.g_loss == "minimax"
    assert build_cell(make_parser().parse_args(["train", "--dataset", "ring8"])).train.g_loss \
        == "non_saturating"
