"""The GAN game in closed form on 1-D densities: D* (BCE, smoothed labels, least squares, hinge), the value
V(D, G), KL and Jensen-Shannon divergences.

Everything works on densities evaluated on an evenly spaced grid of x values (float64), and integrals are
Riemann sums over that grid, so the results can be compared with closed forms and with trained networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

LOG4 = math.log(4.0)


@dataclass(frozen=True)
class Mixture1D:
    """A 1-D mixture of Gaussians: a density we can both evaluate (pdf) and sample from."""

    means: tuple[float, ...]
    stds: tuple[float, ...]
    weights: tuple[float, ...] | None = None  # None: equal weights

    def __post_init__(self) -> None:
        weights = self.weights or (1.0 / len(self.means),) * len(self.means)
        if not (len(self.means) == len(self.stds) == len(weights)) or not self.means:
            raise ValueError("means, stds and weights must be non-empty and of the same length")
        if min(self.stds) <= 0 or min(weights) < 0 or abs(sum(weights) - 1) > 1e-9:
            raise ValueError(f"stds must be > 0 and weights >= 0 summing to 1, got {self.stds}, {weights}")
        object.__setattr__(self, "weights", tuple(weights))

    def pdf(self, x: torch.Tensor) -> torch.Tensor:
        """Density at x."""
        x = x.unsqueeze(-1)
        mu, sd, w = (torch.tensor(v, dtype=x.dtype, device=x.device) for v in (self.means, self.stds, self.weights))
        return (w * torch.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))).sum(-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n samples, shape (n, 1), float32."""
        w = torch.tensor(self.weights)
        component = torch.multinomial(w, n, replacement=True, generator=generator)
        mu, sd = torch.tensor(self.means)[component], torch.tensor(self.stds)[component]
        return (mu + sd * torch.randn(n, generator=generator)).unsqueeze(1)


def grid(lo: float = -10.0, hi: float = 10.0, n: int = 200_001) -> tuple[torch.Tensor, float]:
    """Evenly spaced float64 points on [lo, hi] and their spacing dx."""
    x = torch.linspace(lo, hi, n, dtype=torch.float64)
    return x, (hi - lo) / (n - 1)


def optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """D*(x) = p_data(x) / (p_data(x) + p_g(x)); 1/2 where both densities are 0 (any value is optimal there)."""
    total = p_data + p_g
    return torch.where(total > 0, p_data / total.clamp_min(torch.finfo(total.dtype).tiny), torch.full_like(total, 0.5))


def _xlogy(a: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """a * log(y) with 0 * log(0) = 0 (the convention that makes the integrals finite)."""
    return torch.special.xlogy(a, y)


def pointwise_value(a: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """a log y + b log(1 - y): the integrand of V(D, G) at one x, with a = p_data(x), b = p_g(x), y = D(x)."""
    return _xlogy(a, y) + _xlogy(b, 1 - y)


def value(p_data: torch.Tensor, p_g: torch.Tensor, d: torch.Tensor, dx: float) -> torch.Tensor:
    """V(D, G) = integral of p_data log D + p_g log(1 - D), for densities and D on a grid with spacing dx."""
    return pointwise_value(p_data, p_g, d).sum() * dx


def optimal_value(p_data: torch.Tensor, p_g: torch.Tensor, dx: float) -> torch.Tensor:
    """V(D*, G), with log D* and log(1 - D*) taken as log(p_data / (p_data + p_g)) and log(p_g / (p_data + p_g)).

    Forming 1 - D* first would round it to 0 wherever p_g < 1e-16 p_data, and p_g log 0 is -inf there.
    """
    total = p_data + p_g
    return (_xlogy(p_data, p_data) + _xlogy(p_g, p_g) - _xlogy(total, total)).sum() * dx


def kl(p: torch.Tensor, q: torch.Tensor, dx: float = 1.0) -> torch.Tensor:
    """KL(p || q) = sum p log(p / q) over the last axis (times dx for densities; dx = 1 for probability vectors)."""
    return (_xlogy(p, p) - _xlogy(p, q)).sum(-1) * dx


def jsd(p: torch.Tensor, q: torch.Tensor, dx: float = 1.0) -> torch.Tensor:
    """Jensen-Shannon divergence 1/2 KL(p || m) + 1/2 KL(q || m) with m = (p + q) / 2, in nats (at most log 2)."""
    m = (p + q) / 2
    return 0.5 * kl(p, m, dx) + 0.5 * kl(q, m, dx)


def smoothed_optimal_discriminator(
    p_data: torch.Tensor, p_g: torch.Tensor, real_label: float = 1.0, fake_label: float = 0.0
) -> torch.Tensor:
    """The D minimising BCE with targets real_label on data and fake_label on fakes: (r p_data + f p_g) / (p_data + p_g)."""
    total = (p_data + p_g).clamp_min(torch.finfo(p_data.dtype).tiny)
    return (real_label * p_data + fake_label * p_g) / total


def least_squares_optimal_discriminator(
    p_data: torch.Tensor, p_g: torch.Tensor, a: float = 0.0, b: float = 1.0
) -> torch.Tensor:
    """The D minimising 1/2 E_data[(D - b)^2] + 1/2 E_g[(D - a)^2]: (b p_data + a p_g) / (p_data + p_g) (Mao et al.)."""
    total = (p_data + p_g).clamp_min(torch.finfo(p_data.dtype).tiny)
    return (b * p_data + a * p_g) / total


def hinge_optimal_discriminator(p_data: torch.Tensor, p_g: torch.Tensor) -> torch.Tensor:
    """The D minimising E_data[max(0, 1 - D)] + E_g[max(0, 1 + D)]: sign(p_data - p_g) (anything in [-1, 1] on ties)."""
    return torch.sign(p_data - p_g)
