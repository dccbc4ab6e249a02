"""PacGAN's setup (bench/nets/pacgan.py, the -pacgan datasets, the pacgan-t1 presets): the nets
and data are the authors' code's (github.com/fjxmlzn/PacGAN, synthetic_data_experiments/), the
new options change no existing cell id, bad options are one-line errors, and every variant of
both presets builds, trains and is scored."""

import pytest
import torch
from torch import nn

from bench.core.config import CellConfig, ConfigError, DataConfig, NetConfig, OptimConfig
from bench.data import load_dataset
from bench.nets import build_nets
from bench.nets.pacgan import Maxout, pacgan_discriminator, pacgan_generator
from bench.schedule.grid import load_grid
from tests.tiny import scored_in_two_steps


def test_g_is_four_400_unit_relu_layers_with_batch_norm_on_a_2d_z():
    G = pacgan_generator(2, 2)
    assert len(G.blocks) == 4
    for i, stage in enumerate(G.blocks):
        assert isinstance(stage.main, nn.Linear) and stage.main.bias is None  # use_bias=False
        assert (stage.main.in_features, stage.main.out_features) == (2 if i == 0 else 400, 400)
        assert isinstance(stage.norm, nn.BatchNorm1d)
        assert (stage.norm.eps, stage.norm.momentum) == (1e-4, 0.05)  # blocks' eps; 0.05 avg
        assert isinstance(stage.act, nn.ReLU)
    out = G.synthesis.to_out
    assert (out.in_features, out.out_features) == (400, 2) and out.bias is not None
    # the reference's parameter count: 2*400 + 3*400*400 + 4*(400+400) (BN) + 400*2 + 2
    assert sum(p.numel() for p in G.parameters()) == 800 + 480000 + 3200 + 802


def test_d_is_three_maxout_layers_of_200_units_with_5_pieces():
    D = pacgan_discriminator(2)
    assert len(D.blocks) == 3 and D.blocks[0].is_input
    for i, stage in enumerate(D.blocks):
        linear, maxout = stage.main
        assert (linear.in_features, linear.out_features) == (2 if i == 0 else 200, 1000)
        assert isinstance(maxout, Maxout) and maxout.pieces == 5
    assert (D.head.in_features, D.head.out_features) == (200, 1)
    assert sum(p.numel() for p in D.parameters()) == 3000 + 2 * 201000 + 201
    assert D(torch.randn(7, 2)).shape == (7,)


def test_maxout_takes_the_max_of_consecutive_pieces():
    x = torch.tensor([[1., 5, 2, 0, -1, 3]])
    assert torch.equal(Maxout(3)(x), torch.tensor([[5., 3]]))


def test_init_is_normal_002_with_zero_biases():
    torch.manual_seed(0)
    nets = build_nets(NetConfig(z_dim=2, arch="pacgan"), "2d", (2,))
    big = [m for m in nets.D.modules() if isinstance(m, nn.Linear) and m.weight.numel() > 10000]
    assert big and all(abs(float(m.weight.detach().std()) - 0.02) < 0.001 for m in big)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in nets.D.modules()
               if isinstance(m, nn.Linear))


def test_pacgan_datasets_are_the_papers():
    ring = load_dataset("ring8-pacgan")
    assert ring.sigma == 0.01 and len(ring.train) == 100_000 and ring.num_modes == 8
    angles = torch.arange(8) * 2 * torch.pi / 8
    assert torch.allclose(ring.centers, torch.stack([angles.cos(), angles.sin()], 1), atol=1e-6)
    grid = load_dataset("grid25-pacgan")
    assert grid.sigma == 0.05 and len(grid.train) == 100_000 and grid.num_modes == 25
    assert sorted({float(v) for v in grid.centers.flatten()}) == [-4, -2, 0, 2, 4]
    # the suite's own grid25 is PacGAN's scaled by 1/4; ring8 has PacGAN's modes
    assert torch.allclose(load_dataset("grid25").centers * 4, grid.centers)
    assert torch.allclose(load_dataset("ring8").centers, ring.centers)


def test_new_options_leave_existing_cell_ids_alone():
    cell = CellConfig(data=DataConfig("ring8"))
    assert "arch" not in cell.to_dict()["net"]
    assert cell.net == NetConfig(arch="") and OptimConfig().beta1 == 0.5
    pac = cell.replace(net=NetConfig(z_dim=2, arch="pacgan"))
    assert pac.to_dict()["net"]["arch"] == "pacgan" and pac.cell_id != cell.cell_id


@pytest.mark.parametrize("kwargs,match", [
    ({"arch": "resnet"}, "arch must be one of"),
    ({"arch": "pacgan", "width": 64}, "do not set width"),
    ({"arch": "pacgan", "activation": "tanh"}, "do not set activation"),
])
def test_bad_net_options_are_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        NetConfig(**kwargs)


def test_pacgan_nets_are_2d_only():
    with pytest.raises(ConfigError, match="2-D architecture"):
        NetConfig(arch="pacgan").check_kind("image")


def test_a_bad_beta1_in_a_grid_is_one_line(tmp_path):
    path = tmp_path / "g.toml"
    path.write_text('[[data]]\nname = "ring8"\nbeta1 = 1.5\n')
    with pytest.raises(ConfigError, match=r"beta1 = 1.5: expected a number in \[0, 1\)"):
        load_grid(str(path))


def _settings(cell):
    return (cell.net.arch, cell.net.z_dim, cell.train.batch_size, cell.train.g_optim,
            cell.train.d_optim)


PAPER = (("pacgan", 2, 100, OptimConfig(1e-4, 0.8), OptimConfig(1e-4, 0.8)))


def _m(cell):
    return cell.tricks[0].param_dict["m"] if cell.tricks else 1


def test_pacgan_t1_is_the_authors_config():
    grid = load_grid("pacgan-t1")
    assert {c.data.name for c in grid.cells} == {"ring8-pacgan", "grid25-pacgan"}
    assert {c.seed for c in grid.cells} == set(range(10))
    assert {_m(c) for c in grid.cells} == {1, 2, 3, 4}
    assert len(grid.cells) == 2 * 4 * 10
    for c in grid.cells:
        assert _settings(c) == PAPER
        assert c.train.steps == 400 * 100_000 // 100  # 400 epochs of 100,000 samples
        assert c.trick_names in ((), ("packing",))


def test_pacgan_t1_cpu_is_the_same_setup_scaled():
    grid = load_grid("pacgan-t1-cpu")
    assert {c.data.name for c in grid.cells} == {"ring8-pacgan", "grid25-pacgan"}
    assert len({c.seed for c in grid.cells}) >= 5
    assert {_m(c) for c in grid.cells} == {1, 2}
    assert len(grid.cells) == 2 * 2 * len({c.seed for c in grid.cells})
    for c in grid.cells:
        assert _settings(c) == PAPER
        assert c.train.steps == 25_000  # the factor the preset states: 25 epochs, 1/16
        assert c.train.steps * 16 == 400 * 100_000 // 100


def test_pacgan_t1_cpu_fits_its_three_hours_at_the_pessimistic_step_cost():
    """The preset's comment sizes it for 3 hours on an idle 2-core machine with two workers at
    35 ms a step for m = 1 (the pessimistic end of the measured 31-35 ms) and 1.17 x that for
    m = 2 (benchmarks/calibration/pacgan-t1-cpu-budget.txt); the dry run's own model
    (bench/schedule/step_costs.py) must agree that it fits, with room to spare."""
    from bench.schedule.step_costs import estimate_cell_seconds

    cells = load_grid("pacgan-t1-cpu").cells
    per_cell = [c.train.steps * 0.035 * (1.17 if _m(c) == 2 else 1.0) for c in cells]
    assert sum(per_cell) / 2 <= 3 * 3600  # 10.85 x 25,000 x 35 ms = 2.64 h a worker
    assert sum(per_cell) / 2 > 2.5 * 3600  # and it is not far below: the largest round budget
    assert sum(estimate_cell_seconds(c) for c in cells) / 2 <= 3 * 3600 * 0.75


CELLS = {(c.data.name, _m(c)): c for g in ("pacgan-t1", "pacgan-t1-cpu")
         for c in reversed(load_grid(g).cells) if c.seed == 0}


@pytest.mark.parametrize("key", sorted(CELLS), ids=lambda k: f"{k[0]}-m{k[1]}")
def test_every_preset_variant_trains_and_is_scored(key, tmp_path):
    cell = CELLS[key]
    record = scored_in_two_steps(cell, tmp_path)
    assert record.status == "done", record.reason
    assert {"modes", "high_quality", "reverse_kl"} <= set(record.metrics)
    assert record.optim["G"] == {"lr": 1e-4, "beta1": 0.8, "beta2": 0.999}


def test_g_normalization_tricks_conflict_with_pacgan_nets_as_data(tmp_path):
    """PacGAN's G has batch norm in every hidden layer: a trick that adds G norms is a declared
    conflict with `arch = "pacgan"` (ARCH_SLOTS), stored as `conflict` with one line of reason,
    not a failure when the nets are built; D-only batch norm still runs."""
    import dataclasses

    from bench.core.config import ARCH_SLOTS, ARCHS
    from bench.schedule.grid import full_spec
    from bench.schedule.runner import disallowed_record, run_cell
    from bench.store import Store
    from bench.trickapi.registry import conflict_reasons, create_trick
    from bench.trickapi.trick import SLOTS

    assert set(ARCH_SLOTS) <= set(ARCHS) and all(set(s) <= set(SLOTS) for s in ARCH_SLOTS.values())
    for name in ("batch_norm", "virtual_batch_norm"):
        (reason,) = conflict_reasons([create_trick(name)], "2d", frozenset(), "pacgan")
        assert "arch 'pacgan'" in reason and "g_normalization" in reason and "\n" not in reason
        assert conflict_reasons([create_trick(name)], "2d", frozenset()) == []  # the MLP: fine
    assert conflict_reasons([create_trick("batch_norm", on_g=False)], "2d", frozenset(),
                            "pacgan") == []
    path = tmp_path / "g.toml"
    path.write_text('seeds = [0]\ntricks = ["batch_norm"]\n[[data]]\nname = "ring8-pacgan"\n'
                    'arch = "pacgan"\nz_dim = 2\nsteps = 2\nbatch_size = 8\n')
    grid = load_grid(str(path))
    bn = [c for c in grid.cells if c.trick_names == ("batch_norm",)]
    assert len(bn) == 1
    record = disallowed_record(bn[0])
    assert record.status == "conflict" and "arch 'pacgan'" in record.reason
    assert "\n" not in record.reason
    with Store(tmp_path / "store") as store:
        assert run_cell(bn[0], store, progress=False).status == "conflict"
    d_only = dataclasses.replace(bn[0], tricks=(full_spec("batch_norm", {"on_g": False}),))
    assert scored_in_two_steps(d_only, tmp_path / "d_only").status == "done"
