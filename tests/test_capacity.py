"""Capacity of the architecture tricks against the cell's baseline nets (issue 10, item 3): the
`capacity = "matched"` options land G and D within +-10% of the baseline's parameter counts on
digits 16 px and on a 32 px cell; the figures in the tricks' docstrings are these counts."""
from __future__ import annotations

import pytest
import torch

from bench.core.config import NetConfig
from bench.nets import build_nets
from bench.trickapi.registry import build_tricks
from bench.trickapi.trick import BuildContext
from bench.trickapi.trickset import TrickSet
from tests.tiny import tiny_trainer

CELLS = {"digits16": ((1, 16, 16), NetConfig()), "32px": ((3, 32, 32), NetConfig(width=64))}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def counts(cell: str, tricks=()) -> tuple[int, int]:
    """(G, D) parameter counts of a cell's nets after the tricks' builds (on the meta device:
    shapes only, no memory, no random numbers)."""
    shape, net = CELLS[cell]
    meta = torch.device("meta")
    ctx = BuildContext(kind="image", shape=shape, net=net, steps=100, batch_size=16, seed=0,
                       device=meta, real_samples=lambda n: torch.zeros(n, *shape, device=meta))
    with meta:
        nets = TrickSet(build_tricks(tricks, "image")).build(build_nets(net, "image", shape), ctx)
    return count(nets.G), count(nets.D)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("name", ["minibatch_discrimination", "progressive_growing", "stylegan"])
def test_matched_capacity_is_within_ten_percent_of_the_baseline(cell, name):
    g0, d0 = counts(cell)
    g_free, d_free = counts(cell, [(name, {})])
    g, d = counts(cell, [(name, {"capacity": "matched"})])
    assert abs(g / g0 - 1) <= 0.10 and abs(d / d0 - 1) <= 0.10, (g / g0, d / d0)
    assert max(g_free / g0, d_free / d0) > 1.10  # the free default is what needed matching


def test_documented_parameter_counts_on_digits():
    assert counts("digits16") == (98_817, 34_305)
    assert counts("digits16", [("minibatch_discrimination", {})]) == (98_817, 68_505)
    assert counts("digits16", [("minibatch_discrimination", {"capacity": "matched"})]) == \
        (98_817, 37_725)
    assert counts("digits16", [("progressive_growing", {})]) == (419_363, 548_961)
    assert counts("digits16", [("stylegan", {})]) == (363_491, 34_305)
    assert counts("digits16", [("dual_discriminator", {})]) == (98_817, 2 * 34_305)
    assert counts("digits16", [("self_attention", {})]) == (100_098, 35_586)


@pytest.mark.parametrize("cell", list(CELLS))
def test_self_attention_stays_inside_the_band_without_an_option(cell):
    g0, d0 = counts(cell)
    g, d = counts(cell, [("self_attention", {})])
    assert 1 < g / g0 <= 1.10 and 1 < d / d0 <= 1.10


def test_matched_cell_trains_and_its_record_shows_the_counts():
    base = tiny_trainer("digits", [], steps=1).make_record("done").nets
    tr = tiny_trainer("digits", [("progressive_growing", {"capacity": "matched"})], steps=1)
    tr.train_step()
    nets = tr.make_record("done").nets
    assert abs(nets["g_params"] / base["g_params"] - 1) <= 0.10
    assert abs(nets["d_params"] / base["d_params"] - 1) <= 0.10


@pytest.mark.parametrize("name", ["progressive_growing", "stylegan"])
def test_capacity_option_keeps_existing_cell_ids(name):
    """The option came after cells were stored: at its default it is not pinned in the spec."""
    from bench.schedule.grid import full_spec

    assert "capacity" not in full_spec(name).param_dict
    assert full_spec(name, {"capacity": "matched"}).param_dict["capacity"] == "matched"
    assert full_spec(name, {"capacity": "free"}) == full_spec(name)


@pytest.mark.parametrize("cell", list(CELLS))
@pytest.mark.parametrize("name", ["batch_norm", "virtual_batch_norm", "minibatch_stddev",
                                  "spectral_norm", "dropout"])
def test_other_build_tricks_stay_inside_the_band(cell, name):
    """The remaining build tricks add at most a few normalization gains or one head channel."""
    g0, d0 = counts(cell)
    g, d = counts(cell, [(name, {})])
    assert abs(g / g0 - 1) <= 0.01 and abs(d / d0 - 1) <= 0.01, (g / g0, d / d0)
