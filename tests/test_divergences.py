"""dcgan_utils.course.divergences against independent references: scipy's W1, a linear programme for the
Kantorovich-Rubinstein dual, and scipy's quadrature for the Pearson chi^2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, optimize, stats

from dcgan_utils.course import divergences, theory


def _densities(n: int = 4001, lo: float = -8.0, hi: float = 8.0):
    x, dx = theory.grid(lo, hi, n)
    p = theory.Mixture1D((-2.0, 1.0), (0.5, 0.8), (0.3, 0.7)).pdf(x)
    q = theory.Mixture1D((0.5,), (1.5,)).pdf(x)
    return x, dx, p / (p.sum() * dx), q / (q.sum() * dx)  # equal mass on the grid, as scipy's weights are normalised


def test_wasserstein_matches_scipy_on_the_grid_and_a_shift():
    x, dx, p, q = _densities()
    reference = stats.wasserstein_distance(x.numpy(), x.numpy(), p.numpy(), q.numpy())
    assert divergences.wasserstein_1d(p, q, dx).item() == pytest.approx(reference, abs=1e-10)
    shifted = theory.Mixture1D((-2.0 + 1.5, 1.0 + 1.5), (0.5, 0.8), (0.3, 0.7)).pdf(x)
    assert divergences.wasserstein_1d(p, shifted, dx).item() == pytest.approx(1.5, abs=1e-3)  # a shift's W1: its size


def test_kantorovich_potential_is_1_lipschitz_and_attains_the_linear_programme_optimum():
    x, dx, p, q = _densities(n=201)
    f = divergences.kantorovich_potential(p, q, dx)
    assert (f.diff().abs() <= dx + 1e-12).all()
    # the dual as a linear programme: maximise sum f_i (p_i - q_i) dx subject to |f_{i+1} - f_i| <= dx, f_0 = 0
    n = len(x)
    diff = np.zeros((n - 1, n))
    diff[np.arange(n - 1), np.arange(n - 1)], diff[np.arange(n - 1), np.arange(1, n)] = -1.0, 1.0
    bounds = [(0, 0)] + [(None, None)] * (n - 1)
    lp = optimize.linprog(-(p - q).numpy() * dx, A_ub=np.vstack([diff, -diff]), b_ub=np.full(2 * (n - 1), dx),
                          bounds=bounds, method="highs")
    ours = divergences.expectation(p, f, dx) - divergences.expectation(q, f, dx)
    assert lp.success and ours.item() == pytest.approx(-lp.fun, abs=1e-6)  # the solver's tolerance
    assert ours.item() == pytest.approx(divergences.wasserstein_1d(p, q, dx).item(), abs=1e-9)


def test_pearson_chi2_matches_quadrature_and_is_inf_off_the_support():
    x, dx, p, q = _densities()
    def integrand(t):
        a = 0.3 * stats.norm.pdf(t, -2, 0.5) + 0.7 * stats.norm.pdf(t, 1, 0.8)
        b = stats.norm.pdf(t, 0.5, 1.5)
        return (a - b) ** 2 / b
    reference, _ = integrate.quad(integrand, -8, 8, limit=200)
    assert divergences.pearson_chi2(p, q, dx).item() == pytest.approx(reference, rel=1e-6)
    assert divergences.pearson_chi2(q, p.clone().index_fill_(0, torch.tensor([2000]), 0.0), dx).item() == float("inf")
    assert divergences.pearson_chi2(p, p, dx).item() == 0.0
