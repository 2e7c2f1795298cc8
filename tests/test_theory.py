"""dcgan_utils.course.theory against independent references: scipy's optimiser, scipy's JSD and normal density."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import optimize, stats
from scipy.spatial.distance import jensenshannon

from dcgan_utils.course import theory


@pytest.mark.parametrize("a,b", [(0.3, 0.7), (2.0, 0.1), (1e-3, 5.0), (1.0, 1.0)])
def test_optimal_discriminator_is_the_pointwise_maximum(a, b):
    best = optimize.minimize_scalar(lambda y: -(a * math.log(y) + b * math.log(1 - y)),
                                    bounds=(1e-12, 1 - 1e-12), method="bounded", options={"xatol": 1e-10})
    closed = theory.optimal_discriminator(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    assert closed.item() == pytest.approx(best.x, abs=1e-6)


def test_optimal_discriminator_is_one_half_where_both_densities_vanish():
    zero = torch.zeros(3, dtype=torch.float64)
    assert torch.equal(theory.optimal_discriminator(zero, zero), torch.full((3,), 0.5, dtype=torch.float64))


def test_jsd_matches_scipy_on_probability_vectors_with_zeros():
    gen = torch.Generator().manual_seed(0)
    p, q = torch.rand(20, generator=gen, dtype=torch.float64), torch.rand(20, generator=gen, dtype=torch.float64)
    p[:5] = 0
    p, q = p / p.sum(), q / q.sum()
    assert theory.jsd(p, q).item() == pytest.approx(jensenshannon(p.numpy(), q.numpy()) ** 2, abs=1e-12)
    disjoint = torch.tensor([1.0, 0.0], dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64)
    assert theory.jsd(*disjoint).item() == pytest.approx(math.log(2), abs=1e-15)


def test_mixture_pdf_is_scipys_and_integrates_to_one():
    mix = theory.Mixture1D(means=(-1.0, 2.0), stds=(0.5, 0.8), weights=(0.3, 0.7))
    x, dx = theory.grid(-10, 10, 20_001)
    reference = 0.3 * stats.norm.pdf(x.numpy(), -1, 0.5) + 0.7 * stats.norm.pdf(x.numpy(), 2, 0.8)
    assert torch.allclose(mix.pdf(x), torch.from_numpy(reference), atol=1e-12)
    assert (mix.pdf(x).sum() * dx).item() == pytest.approx(1.0, abs=1e-9)
    samples = mix.sample(200_000, torch.Generator().manual_seed(0))
    assert samples.shape == (200_000, 1) and samples.mean().item() == pytest.approx(0.3 * -1 + 0.7 * 2, abs=0.02)


def test_mixture_rejects_weights_that_do_not_sum_to_one():
    with pytest.raises(ValueError, match="summing to 1"):
        theory.Mixture1D(means=(0.0, 1.0), stds=(1.0, 1.0), weights=(0.5, 0.6))


@pytest.mark.parametrize("mean,std", [(0.0, 1.0), (0.5, 1.0), (3.0, 0.5), (8.0, 1.0)])
def test_game_value_at_the_optimum_is_minus_log4_plus_twice_jsd(mean, std):
    x, dx = theory.grid(-15, 15, 300_001)
    a, b = theory.Mixture1D((0.0,), (1.0,)).pdf(x), theory.Mixture1D((mean,), (std,)).pdf(x)
    c = theory.optimal_value(a, b, dx).item()
    assert math.isfinite(c) and c == pytest.approx(-theory.LOG4 + 2 * theory.jsd(a, b, dx).item(), abs=1e-9)
    assert -theory.LOG4 - 1e-9 <= c <= 1e-9


def test_optimal_value_equals_the_value_of_d_star_where_that_is_finite():
    x, dx = theory.grid(-6, 6, 10_001)
    a, b = theory.Mixture1D((0.0,), (1.0,)).pdf(x), theory.Mixture1D((0.7,), (1.3,)).pdf(x)
    direct = theory.value(a, b, theory.optimal_discriminator(a, b), dx)
    assert torch.isfinite(direct) and theory.optimal_value(a, b, dx).item() == pytest.approx(direct.item(), abs=1e-12)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.9, 0.0), (0.9, 0.1)])
def test_smoothed_optimal_discriminator_minimises_the_expected_bce(alpha, beta):
    a, b = 0.4, 1.3
    def expected(y):
        return -(a * (alpha * math.log(y) + (1 - alpha) * math.log(1 - y))
                 + b * (beta * math.log(y) + (1 - beta) * math.log(1 - y)))
    best = optimize.minimize_scalar(expected, bounds=(1e-12, 1 - 1e-12), method="bounded", options={"xatol": 1e-10})
    ours = theory.smoothed_optimal_discriminator(torch.tensor(a), torch.tensor(b), alpha, beta)
    assert ours.item() == pytest.approx(best.x, abs=1e-5)


@pytest.mark.parametrize("a,b,pd,pg", [(0.0, 1.0, 0.4, 1.3), (-1.0, 1.0, 2.0, 0.1), (-1.0, 1.0, 0.0, 0.7)])
def test_least_squares_optimal_discriminator_minimises_the_lsgan_loss(a, b, pd, pg):
    best = optimize.minimize_scalar(lambda y: 0.5 * pd * (y - b) ** 2 + 0.5 * pg * (y - a) ** 2,
                                    bounds=(-5, 5), method="bounded", options={"xatol": 1e-10})
    ours = theory.least_squares_optimal_discriminator(torch.tensor(pd, dtype=torch.float64),
                                                      torch.tensor(pg, dtype=torch.float64), a, b)
    assert ours.item() == pytest.approx(best.x, abs=1e-6)


@pytest.mark.parametrize("pd,pg", [(0.4, 1.3), (2.0, 0.1), (0.0, 0.7), (0.3, 0.0)])
def test_hinge_optimal_discriminator_minimises_the_hinge_loss(pd, pg):
    ys = torch.linspace(-3, 3, 60_001, dtype=torch.float64)
    loss = pd * torch.relu(1 - ys) + pg * torch.relu(1 + ys)
    ours = theory.hinge_optimal_discriminator(torch.tensor(pd, dtype=torch.float64),
                                              torch.tensor(pg, dtype=torch.float64))
    at_ours = pd * max(0.0, 1 - ours.item()) + pg * max(0.0, 1 + ours.item())
    assert abs(ours.item()) == 1 and at_ours == pytest.approx(loss.min().item(), abs=1e-12)
    if pd > 0 and pg > 0:  # the minimiser is unique: +1 where the data are denser, -1 where the fakes are
        assert ys[loss.argmin()].item() == pytest.approx(ours.item(), abs=1e-9)


def test_kl_and_jsd_work_row_by_row_on_a_batch_of_densities():
    gen = torch.Generator().manual_seed(3)
    p, q = torch.rand(4, 30, generator=gen, dtype=torch.float64), torch.rand(4, 30, generator=gen, dtype=torch.float64)
    p, q = p / p.sum(1, keepdim=True), q / q.sum(1, keepdim=True)
    rows = torch.stack([torch.tensor(jensenshannon(a.numpy(), b.numpy()) ** 2) for a, b in zip(p, q)])
    assert theory.jsd(p, q).shape == (4,) and torch.allclose(theory.jsd(p, q), rows, atol=1e-12)
    assert torch.allclose(theory.kl(p, q), torch.stack([theory.kl(a, b) for a, b in zip(p, q)]), atol=1e-15)
