"""Distances between 1-D densities on a grid beyond the JSD: the earth mover's distance W1 (with the 1-Lipschitz
function that attains it in the Kantorovich-Rubinstein duality) and the Pearson chi^2 divergence of LSGAN.

Densities are float64 values on an evenly spaced grid with spacing dx, as in dcgan_utils.course.theory.
"""

from __future__ import annotations

import torch


def cdf(p: torch.Tensor, dx: float) -> torch.Tensor:
    """F(x) = integral of p up to x (a Riemann sum on the grid)."""
    return torch.cumsum(p, dim=-1) * dx


def wasserstein_1d(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """W1(p, q) = integral of |F_p - F_q|: the earth mover's distance between two densities on the line."""
    return (cdf(p, dx) - cdf(q, dx)).abs().sum(-1) * dx


def kantorovich_potential(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """A 1-Lipschitz f with E_p f - E_q f = W1(p, q): slope sign(F_q - F_p), f = 0 at the grid's left end.

    E_p f - E_q f = integral of f' (F_q - F_p) (integration by parts), largest over |f'| <= 1 for f' = sign(F_q - F_p).
    """
    slope = torch.sign(cdf(q, dx) - cdf(p, dx))
    return torch.cat([slope.new_zeros(slope.shape[:-1] + (1,)), torch.cumsum(slope[..., :-1], dim=-1) * dx], dim=-1)


def expectation(p: torch.Tensor, f: torch.Tensor, dx: float) -> torch.Tensor:
    """E_p f = integral of p f."""
    return (p * f).sum(-1) * dx


def pearson_chi2(p: torch.Tensor, q: torch.Tensor, dx: float) -> torch.Tensor:
    """Pearson chi^2(p || q) = integral of (p - q)^2 / q; inf where p > 0 = q."""
    if bool(((q == 0) & (p > 0)).any()):
        return torch.tensor(float("inf"), dtype=p.dtype)
    keep = q > 0
    return ((p - q)[keep] ** 2 / q[keep]).sum() * dx
