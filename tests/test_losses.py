"""Losses against PyTorch's binary_cross_entropy_with_logits and against the formulas written out plainly."""

import math

import pytest
import torch
import torch.nn.functional as F

from dcgan_utils.engine.config import LOSS_KINDS
from dcgan_utils.engine.losses import discriminator_loss, generator_loss, mean_output, reads_as_probability

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


# Hand-computed on two real and two fake logits (not the formulas of losses.py retyped):
# real = [2, -0.5], fake = [0.5, -3]
#   least squares D: 1/2 mean((2-1)^2, (-1.5)^2) + 1/2 mean(0.5^2, 3^2) = 1/2 (1.625) + 1/2 (4.625) = 3.125
#                 G: 1/2 mean((0.5-1)^2, (-3-1)^2) = 1/2 (8.125) = 4.0625
#   hinge         D: mean(relu(-1), relu(1.5)) + mean(relu(1.5), relu(-2)) = 0.75 + 0.75 = 1.5;  G: -mean(0.5, -3) = 1.25
#   wasserstein   D: mean(0.5, -3) - mean(2, -0.5) = -1.25 - 0.75 = -2;  G: 1.25
HAND = {"least_squares": (3.125, 4.0625), "hinge": (1.5, 1.25), "wasserstein": (-2.0, 1.25)}


@pytest.mark.parametrize("kind", sorted(HAND))
def test_other_kinds_equal_hand_computed_values(kind):
    real, fake = torch.tensor([2.0, -0.5]), torch.tensor([0.5, -3.0])
    assert discriminator_loss(real, fake, kind).item() == pytest.approx(HAND[kind][0])
    assert generator_loss(fake, kind).item() == pytest.approx(HAND[kind][1])


def _two_point_loss(kind, d):
    """D's loss when data put mass 3/4, 1/4 on two points x1, x2 and G puts 1/4, 3/4; d = D's outputs (d1, d2)."""
    real = torch.stack([d[0], d[0], d[0], d[1]])
    fake = torch.stack([d[0], d[1], d[1], d[1]])
    return discriminator_loss(real, fake, kind)


@pytest.mark.parametrize("kind, optimum", [
    ("non_saturating", [math.log(3), -math.log(3)]),  # D*(x1) = 3/4: logit log 3
    ("least_squares", [0.75, 0.25]),  # Mao et al.: D* = (b p_data + a p_g) / (p_data + p_g), a = 0, b = 1
    ("hinge", [1.0, -1.0]),  # D* = sign(p_data - p_g) within the margin
])
def test_each_discriminator_loss_is_smallest_at_its_papers_optimum(kind, optimum):
    """Goodfellow et al.: D*(x) = p_data / (p_data + p_g), a logit of log 3 at x1; LSGAN's and hinge's as noted."""
    best = _two_point_loss(kind, torch.tensor(optimum))
    for step in ([0.05, 0], [-0.05, 0], [0, 0.05], [0, -0.05]):
        assert _two_point_loss(kind, torch.tensor(optimum) + torch.tensor(step)) > best - 1e-7, step
    if kind != "hinge":  # smooth: the gradient vanishes there
        d = torch.tensor(optimum, requires_grad=True)
        (grad,) = torch.autograd.grad(_two_point_loss(kind, d), d)
        assert grad.abs().max() < 1e-5


def test_the_wasserstein_critic_loss_has_no_optimum_without_a_lipschitz_constraint():
    """Linear in D: doubling the critic's outputs doubles the loss, so an unconstrained critic runs off to -inf."""
    d = torch.tensor([1.0, -1.0])
    assert _two_point_loss("wasserstein", 2 * d) == pytest.approx(2 * _two_point_loss("wasserstein", d).item())
    assert _two_point_loss("wasserstein", 2 * d) < _two_point_loss("wasserstein", d) < 0


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
    with pytest.raises(ValueError, match="unknown loss kind 'bce': choose one of minimax, non_saturating, least_squares, "
                                         "hinge, wasserstein$"):  # the list a learner can copy a name from
        discriminator_loss(REAL, FAKE, "bce")
    with pytest.raises(ValueError, match="unknown loss kind"):
        generator_loss(FAKE, "saturating")


@pytest.mark.parametrize("real_label", [0.0, -0.1, 1.1])
def test_real_label_out_of_range_is_rejected(real_label):
    with pytest.raises(ValueError, match="real_label must be in"):
        discriminator_loss(REAL, FAKE, "non_saturating", real_label)


@pytest.mark.parametrize("kind", ["least_squares", "hinge", "wasserstein"])
def test_label_smoothing_only_for_bce_kinds(kind):
    with pytest.raises(ValueError, match=r"BCE kinds only \(minimax, non_saturating\)"):
        discriminator_loss(REAL, FAKE, kind, real_label=0.9)


def test_the_default_kind_is_the_non_saturating_game():
    """Found by mutmut: a default of another name (or none that exists) passed every other test."""
    assert discriminator_loss(REAL, FAKE) == discriminator_loss(REAL, FAKE, "non_saturating")
    assert generator_loss(FAKE) == generator_loss(FAKE, "non_saturating")
    assert mean_output(REAL) == mean_output(REAL, "non_saturating")


def test_mean_output_is_the_mean_probability_for_bce_kinds_and_the_mean_raw_score_otherwise():
    """Hand-computed: sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4; a critic's raw scores are averaged as they are."""
    logits = torch.tensor([0.0, math.log(3.0)])
    for kind in LOSS_KINDS:
        expected = 0.625 if kind in ("minimax", "non_saturating") else math.log(3.0) / 2
        assert mean_output(logits, kind).item() == pytest.approx(expected, abs=1e-7), kind
        assert reads_as_probability(kind) == (kind in ("minimax", "non_saturating"))
    with pytest.raises(ValueError, match="unknown loss kind"):
        mean_output(logits, "bce")
    with pytest.raises(ValueError, match="unknown loss kind"):
        reads_as_probability("bce")
