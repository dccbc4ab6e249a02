"""Learning-rate confounds (issue 10 item 4, issue 21 item 6): ttur keeps D at the cell's LR and
slows G (v3; v2's geometric scheme on request); wgan_gp keeps its paper optimizer by default and
can use the cell's or its authors' toy setting."""
from __future__ import annotations

import math

import pytest
import torch

from bench.core.config import OptimConfig
from bench.schedule.grid import full_spec
from tests.tiny import tiny_trainer


@pytest.mark.parametrize("base", [1e-3, 2e-5])
@pytest.mark.parametrize("ratio", [4.0, 3.0])
def test_ttur_keeps_d_at_the_cells_lr_and_slows_g_by_the_ratio(base, ratio):
    """Version 3 (TTUR / SAGAN): D trains at the cell's lr, G at D's / ratio (SAGAN's 4 by
    default, TTUR's code 3); betas stay the cell's."""
    tr = tiny_trainer("ring8", [("ttur", {"ratio": ratio})], steps=1, lr=base)
    tr.train_step()
    d_lr, g_lr = tr.d_opt.param_groups[0]["lr"], tr.g_opt.param_groups[0]["lr"]
    assert d_lr == base
    assert g_lr == pytest.approx(base / ratio)
    assert tr.d_opt.param_groups[0]["betas"] == (0.5, 0.999) == tr.g_opt.param_groups[0]["betas"]
    assert tr.make_record("done").optim["G"]["lr"] == pytest.approx(g_lr)


def test_ttur_default_is_sagans_ratio():
    tr = tiny_trainer("ring8", ["ttur"], steps=1, lr=4e-4)
    assert (tr.d_spec.lr, tr.g_spec.lr) == (4e-4, pytest.approx(1e-4))  # SAGAN's D 4e-4, G 1e-4


@pytest.mark.parametrize("base", [1e-3, 2e-5])
@pytest.mark.parametrize("ratio", [4.0, 9.0])
def test_ttur_geometric_scheme_is_version_2s_rule(base, ratio):
    tr = tiny_trainer("ring8", [("ttur", {"ratio": ratio, "scheme": "geometric"})], steps=1,
                      lr=base)
    tr.train_step()
    d_lr, g_lr = tr.d_opt.param_groups[0]["lr"], tr.g_opt.param_groups[0]["lr"]
    assert d_lr / g_lr == pytest.approx(ratio)
    assert math.sqrt(d_lr * g_lr) == pytest.approx(base)  # geometric mean at the base LR
    assert d_lr == pytest.approx(base * math.sqrt(ratio))
    assert tr.make_record("done").optim["D"]["lr"] == pytest.approx(d_lr)


def test_ttur_is_version_3():
    """The default changed (v2 was the geometric scheme): new cell ids, old records history."""
    spec = full_spec("ttur")
    assert spec.version == 3 and spec.param_dict == {"ratio": 4.0, "scheme": "slow_g"}


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


def test_wgan_gp_toy_setting_is_the_authors_2d_script():
    """setting = "toy" (gan_toy.py): lambda 0.1, Adam(1e-4, (0.5, 0.9)), 5 critic steps; the
    penalty term scales with it (0.1 / 10 of the paper's on the same batch); the cell id records
    the values that ran, and the paper setting's id is unchanged."""
    from bench.trickapi.registry import create_trick
    from bench.trickapi.trick import StepContext

    toy = tiny_trainer("ring8", [("wgan_gp", {"setting": "toy"})], steps=1, lr=1e-3)
    assert toy.d_spec == toy.g_spec == OptimConfig(lr=1e-4, beta1=0.5, beta2=0.9)
    assert toy.n_d == 5
    assert full_spec("wgan_gp", {"setting": "toy"}).param_dict == {
        "gp_weight": 0.1, "n_critic": 5, "lr": 1e-4, "beta1": 0.5, "beta2": 0.9,
        "setting": "toy"}
    assert "setting" not in full_spec("wgan_gp").param_dict  # existing cells keep their ids
    real, fake = torch.randn(64, 2), torch.randn(64, 2)
    critic = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    terms = {}
    for setting in ("paper", "toy"):
        ctx = StepContext(phase="d", step=0, steps=1, nets=None, critic=critic, real=real,
                          z=None, fake=fake, real_in=real, fake_in=fake)
        torch.manual_seed(0)  # the same interpolates
        terms[setting] = create_trick("wgan_gp", setting=setting).penalty(ctx)["gp"]
    assert torch.isclose(terms["toy"], terms["paper"] * 0.01)
    # a value given with the setting is kept (and recorded)
    assert full_spec("wgan_gp", {"setting": "toy", "gp_weight": 1.0}).param_dict["gp_weight"] == 1


def test_ring8_tuned_tunes_wgan_gp_at_the_cells_lr_and_shares_the_rest_with_the_reference():
    """The tuned-LR preset would otherwise 'tune' wgan_gp at three lrs its paper optimizer
    ignores; every other 1e-3 cell is a cell of the committed reference results (the previous
    default grid's ring8 cells, results/previous-default/records.jsonl), trained once in a shared
    store, so its tuned view reports on the reference's own common-lr cells."""
    import json
    from pathlib import Path

    from bench.schedule.grid import load_grid

    tuned = [c for c in load_grid("ring8-tuned").cells if c.data.name == "ring8"]
    records = (Path(__file__).resolve().parents[1] / "results" / "previous-default"
               / "records.jsonl")
    default = {json.loads(line)["cell_id"] for line in records.read_text().splitlines()}
    wgan = [c for c in tuned if c.label.startswith("wgan_gp")]
    assert sorted({c.train.g_optim.lr for c in wgan}) == [5e-4, 1e-3, 2e-3]
    assert all(c.tricks[0].param_dict["optimizer"] == "cell" for c in wgan)
    others = [c for c in tuned if c.train.g_optim.lr == 1e-3 and c not in wgan]
    assert others
    # a trick whose version was bumped since (ttur v3 slows G instead of speeding D), or one
    # added to the registry since (packing), is a new cell; every other is the reference's own
    stored = {}
    for line in records.read_text().splitlines():
        rec = json.loads(line)
        for t in rec["config"]["tricks"]:
            stored[t["name"]] = max(stored.get(t["name"], 0), t.get("version", 1))
    for c in others:
        bumped = any(t.version > stored.get(t.name, t.version) or t.name not in stored
                     for t in c.tricks)
        assert (c.cell_id in default) != bumped, c.label
    # wgan_gp's common-lr reference cells use its paper optimizer: the tuned ones are others
    paper_wgan = {json.loads(line)["cell_id"] for line in records.read_text().splitlines()
                  if any(t["name"] == "wgan_gp" and t["params"].get("optimizer") != "cell"
                         for t in json.loads(line)["config"]["tricks"])}
    assert paper_wgan and not any(c.cell_id in paper_wgan for c in wgan)
