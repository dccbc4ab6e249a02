"""Baseline nets follow the DCGAN rules and expose their attachment points."""
import pytest
import torch
from torch import nn

from bench.core.config import NetConfig
from bench.nets import build_nets


@pytest.mark.parametrize("shape", [(1, 16, 16), (1, 28, 28), (3, 32, 32)])
def test_dcgan_rules(shape):
    nets = build_nets(NetConfig(width=8), "image", shape)
    G, D = nets.G, nets.D
    z = torch.randn(3, 64)
    x = G(z)
    assert x.shape == (3, *shape) and x.abs().max() <= 1  # tanh output
    assert D(x).shape == (3,)
    for net in (G, D):
        kinds = {type(m) for m in net.modules()}
        assert not kinds & {nn.BatchNorm2d, nn.BatchNorm1d, nn.MaxPool2d, nn.AvgPool2d}
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                assert m.kernel_size[0] % m.stride[0] == 0
    assert any(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in D.modules())
    assert any(isinstance(m, nn.ReLU) for m in G.modules())
    assert D.blocks[0].is_input and not D.blocks[1].is_input
    w = torch.cat([m.weight.flatten() for m in G.modules() if isinstance(m, nn.ConvTranspose2d)])
    assert abs(w.std().item() - 0.02) < 0.002  # N(0, 0.02) init


def test_generator_is_synthesis_after_mapping():
    for kind, shape in (("2d", (2,)), ("image", (1, 16, 16))):
        G = build_nets(NetConfig(width=8), kind, shape).G
        z = torch.randn(4, 64)
        assert torch.equal(G(z), G.synthesis(G.mapping(z)))


def test_feature_layers_stack_and_rebuild_the_head():
    D = build_nets(NetConfig(width=16), "2d", (2,)).D

    class AppendOnes(nn.Module):
        def forward(self, h):
            return torch.cat([h, torch.ones(h.shape[0], 1)], dim=1)

    D.append_feature_layer(AppendOnes(), 1)
    D.append_feature_layer(AppendOnes(), 1)
    assert D.feature_channels == 18 and D.head.in_features == 18
    assert D(torch.randn(5, 2)).shape == (5,)
    assert D.features(torch.randn(5, 2)).shape == (5, 16)


def test_attachment_points_refuse_a_second_layer():
    from bench.trickapi.trick import TrickError

    stage = build_nets(NetConfig(width=8), "2d", (2,)).D.blocks[1]
    stage.attach("norm", nn.BatchNorm1d(8), "first_trick")
    assert isinstance(stage.norm, nn.BatchNorm1d) and stage.norm in stage._chain
    with pytest.raises(TrickError, match="second_trick: Stage.norm already holds BatchNorm1d"):
        stage.attach("norm", nn.LayerNorm(8), "second_trick")
    with pytest.raises(ValueError, match="no attachment point 'main'"):
        stage.attach("main", nn.Identity(), "x")


def test_two_tricks_on_one_point_fail_loudly():
    from bench.trickapi.trick import TrickError
    from tests.tiny import tiny_trainer

    stage = tiny_trainer("digits", ["dropout"]).nets.D.blocks[0]  # the trick took `dropout`
    with pytest.raises(TrickError, match="other: Stage.dropout already holds Dropout"):
        stage.attach("dropout", nn.Dropout(0.1), "other")


def test_the_reference_notebooks_mlp_options_tanh_and_orthogonal_init():
    torch.manual_seed(0)
    plain = build_nets(NetConfig(z_dim=256, width=128, depth=2), "2d", (2,))
    acts = [type(m) for m in plain.G.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU, nn.Tanh))]
    assert set(acts) == {nn.ReLU}
    ref = build_nets(NetConfig(z_dim=256, width=128, depth=2, activation="tanh",
                               init="orthogonal"), "2d", (2,))
    for net in (ref.G, ref.D):
        assert {type(m) for m in net.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU,
                                                                  nn.Tanh))} == {nn.Tanh}
        hidden = [m for m in net.modules() if isinstance(m, nn.Linear)
                  and m.weight.shape == (128, 128)]
        assert hidden
        for m in hidden:  # orthogonal with gain 1.4: W W^T = 1.96 I, biases 0
            eye = torch.eye(128)
            assert torch.allclose(m.weight @ m.weight.T, 1.96 * eye, atol=1e-4)
            assert torch.count_nonzero(m.bias) == 0
    # the plain init is N(0, 0.02): far from orthogonal
    w = next(m.weight for m in plain.G.modules() if isinstance(m, nn.Linear)
             and m.weight.shape == (128, 128))
    assert abs(float(w.detach().std()) - 0.02) < 0.002


def test_net_options_enter_the_cell_id_only_when_set():
    from bench.core.config import CellConfig, ConfigError, DataConfig

    base = CellConfig(data=DataConfig("ring8"), net=NetConfig())
    assert "activation" not in base.to_dict()["net"] and "init" not in base.to_dict()["net"]
    tanh = CellConfig(data=DataConfig("ring8"), net=NetConfig(activation="tanh"))
    assert tanh.cell_id != base.cell_id and tanh.to_dict()["net"]["activation"] == "tanh"
    with pytest.raises(ConfigError, match="activation must be one of default, tanh"):
        NetConfig(activation="relu6")
    with pytest.raises(ConfigError, match="init must be one of normal, orthogonal"):
        NetConfig(init="xavier")
    with pytest.raises(ConfigError, match="option of the 2-D MLPs"):
        build_nets(NetConfig(activation="tanh"), "image", (1, 16, 16))
