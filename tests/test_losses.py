"""Losses against PyTorch's binary_cross_entropy_with_logits and against the formulas written out plainly."""

import pytest
import torch
import torch.nn.functional as F

from dcgan_utils.engine.config import LOSS_KINDS
from dcgan_utils.engine.losses import discriminator_loss, generator_loss

torch.manual_seed(0)
REAL = torch.randn(64) * 3  # moderate logits: the naive sigmoid formulas are accurate here
FAKE = torch.randn(64) * 3
EXTREME = torch.tensor([-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0])


def bce(logits, target):
    """PyTorch's own BCE-with-logits, the reference."""
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
@pytest.mark.parametrize("real_label", [1.0, 0.9])
def test_bce_discriminator_loss_matches_pytorch(kind, real_label):
    expected = bce(REAL, real_label) + bce(FAKE, 0.0)
    torch.testing.assert_close(discriminator_loss(REAL, FAKE, kind, real_label), expected)


def test_generator_losses_match_pytorch_and_the_value_function():
    d_fake = torch.sigmoid(FAKE)
    # non-saturating: -E[log D(G(z))] is BCE against label 1
    torch.testing.assert_close(generator_loss(FAKE, "non_saturating"), bce(FAKE, 1.0))
    torch.testing.assert_close(generator_loss(FAKE, "non_saturating"), -torch.log(d_fake).mean())
    # minimax: E[log(1 - D(G(z)))] is minus the BCE against label 0
    torch.testing.assert_close(generator_loss(FAKE, "minimax"), -bce(FAKE, 0.0))
    torch.testing.assert_close(generator_loss(FAKE, "minimax"), torch.log(1 - d_fake).mean())


def test_discriminator_bce_is_minus_the_value_function():
    value = torch.log(torch.sigmoid(REAL)).mean() + torch.log(1 - torch.sigmoid(FAKE)).mean()
    torch.testing.assert_close(discriminator_loss(REAL, FAKE, "minimax"), -value)


def test_other_kinds_match_their_formulas():
    cases = {
        "least_squares": (0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE**2).mean(), 0.5 * ((FAKE - 1) ** 2).mean()),
        "hinge": (torch.clamp(1 - REAL, min=0).mean() + torch.clamp(1 + FAKE, min=0).mean(), -FAKE.mean()),
        "wasserstein": (FAKE.mean() - REAL.mean(), -FAKE.mean()),
    }
    for kind, (d_expected, g_expected) in cases.items():
        torch.testing.assert_close(discriminator_loss(REAL, FAKE, kind), d_expected, msg=kind)
        torch.testing.assert_close(generator_loss(FAKE, kind), g_expected, msg=kind)


@pytest.mark.parametrize("kind", LOSS_KINDS)
def test_scalar_finite_values_and_gradients_at_extreme_logits(kind):
    real = EXTREME.clone().requires_grad_()
    fake = EXTREME.flip(0).clone().requires_grad_()
    d_loss = discriminator_loss(real, fake, kind)
    g_loss = generator_loss(fake, kind)
    assert d_loss.dim() == 0 and g_loss.dim() == 0
    assert torch.isfinite(d_loss) and torch.isfinite(g_loss)
    d_grad_real, d_grad_fake = torch.autograd.grad(d_loss, (real, fake))
    (g_grad,) = torch.autograd.grad(g_loss, fake)
    assert torch.isfinite(d_grad_real).all() and torch.isfinite(d_grad_fake).all() and torch.isfinite(g_grad).all()


@pytest.mark.parametrize("kind", ["minimax", "non_saturating"])
def test_extreme_values_match_pytorch_where_the_naive_formula_breaks(kind):
    # the naive log(sigmoid(l)) is -inf at l = -1000: our loss must still equal the stable reference
    naive = -torch.log(torch.sigmoid(EXTREME)).mean()
    assert torch.isinf(naive)
    torch.testing.assert_close(discriminator_loss(EXTREME, EXTREME, kind), bce(EXTREME, 1.0) + bce(EXTREME, 0.0))


def test_generator_gradients_with_respect_to_the_logit():
    # d/dl [-log sigmoid(l)] = -(1 - sigmoid(l)): strong when D rejects the fake (l << 0)
    # d/dl [log(1 - sigmoid(l))] = -sigmoid(l): vanishes when D rejects the fake, the saturation problem
    logits = torch.tensor([-8.0, -2.0, 0.0, 2.0]).requires_grad_()
    n = logits.numel()
    (ns,) = torch.autograd.grad(generator_loss(logits, "non_saturating"), logits)
    (mm,) = torch.autograd.grad(generator_loss(logits, "minimax"), logits)
    p = torch.sigmoid(logits.detach())
    torch.testing.assert_close(ns, -(1 - p) / n)
    torch.testing.assert_close(mm, -p / n)
    assert ns[0].abs() > 100 * mm[0].abs()  # at D(G(z)) ~ 3e-4 the saturating gradient has all but gone


def test_unknown_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown loss kind 'bce'.*non_saturating"):
        discriminator_loss(REAL, FAKE, "bce")
    with pytest.raises(ValueError, match="unknown loss kind"):
        generator_loss(FAKE, "saturating")


@pytest.mark.parametrize("real_label", [0.0, -0.1, 1.1])
def test_real_label_out_of_range_is_rejected(real_label):
    with pytest.raises(ValueError, match="real_label must be in"):
        discriminator_loss(REAL, FAKE, "non_saturating", real_label)


@pytest.mark.parametrize("kind", ["least_squares", "hinge", "wasserstein"])
def test_label_smoothing_only_for_bce_kinds(kind):
    with pytest.raises(ValueError, match="BCE kinds only"):
        discriminator_loss(REAL, FAKE, kind, real_label=0.9)
