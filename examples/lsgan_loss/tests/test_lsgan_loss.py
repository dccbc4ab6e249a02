"""The trick's own tests: run with the package installed (`pip install -e .`) beside ganbench."""
import pytest
import torch

from ganbench import StepContext, conflict_reasons, create_trick, list_tricks


def ctx(phase, d_real, d_fake):
    x = torch.zeros(len(d_fake), 2)
    return StepContext(phase=phase, step=0, steps=10, nets=None, critic=None, real=x, z=x,
                       fake=x, real_in=x, fake_in=x, d_real=d_real, d_fake=d_fake,
                       real_t=torch.ones(len(d_fake)), fake_t=torch.zeros(len(d_fake)))


def test_found_through_the_entry_point():
    assert "lsgan_loss" in list_tricks("lsgan*")


def test_losses_match_the_paper():
    t = create_trick("lsgan_loss")
    dr, df = torch.tensor([0.5, 2.0]), torch.tensor([-1.0, 0.25])
    d = t.adversarial_loss(ctx("d", dr, df))
    g = t.adversarial_loss(ctx("g", dr, df))
    assert d.item() == pytest.approx(0.5 * ((0.25 + 1.0) / 2) + 0.5 * ((1.0 + 0.0625) / 2))
    assert g.item() == pytest.approx(0.5 * ((4.0 + 0.5625) / 2))
    assert create_trick("lsgan_loss", c=0.0).adversarial_loss(ctx("g", dr, df)).item() == \
        pytest.approx(0.5 * ((1.0 + 0.0625) / 2))


def test_claims_the_loss_slot():
    reasons = conflict_reasons([create_trick("lsgan_loss"), create_trick("wgan_gp")], "2d")
    assert reasons and "adversarial_loss" in reasons[0]
