"""The Dirac-GAN (Mescheder et al. 2018, "Which training methods for GANs do actually converge?"): the smallest GAN.

The data are one point, x = 0. The generator puts all its mass on one point, theta; the discriminator is linear,
D(x) = psi x. The game's value is L(theta, psi) = f(psi theta) + f(0), which D (psi) maximises and G (theta)
minimises; f(t) = -log(1 + e^-t) gives the GAN of Goodfellow et al., f(t) = t the WGAN. The only equilibrium is
theta = psi = 0: G on the data, D unable to tell. Training steps are maps (theta, psi) -> (theta', psi'); the
eigenvalues of a map's Jacobian at the equilibrium say whether small deviations grow (modulus > 1, spiralling out),
circle (modulus 1) or shrink (modulus < 1, converging).

Regularisers of D, each as a term D's objective subtracts (D maximises):
    r1      gamma / 2 psi^2                since grad_x D(x) = psi at the data point (R1, Mescheder et al.)
    wgan_gp gamma / 2 (|psi| - 1)^2         |grad_x D| pulled to 1 (the paper's form of WGAN-GP's penalty)
    noise   instance noise: D and G see x + eps, eps ~ N(0, sigma^2), averaged here by Gauss-Hermite quadrature
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

REGULARISERS = ("none", "r1", "wgan_gp", "noise")
KINDS = ("gan", "wgan")  # f(t) = -log(1 + e^-t) (Goodfellow et al.), f(t) = t (Arjovsky et al.)


def _transform_partial(fn, argnum: int):
    """d fn / d (argument argnum), the others held fixed, as a function that torch.func transforms compose with."""
    return torch.func.grad(fn, argnums=argnum)


def _eager_partial(fn, argnum: int):
    """The same partial derivative by torch.autograd.grad on fresh leaves: no further derivative of it is possible."""
    def derivative(*args: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():  # also under torch.no_grad(), as torch.func.grad is
            leaves = [a.detach().requires_grad_(i == argnum) for i, a in enumerate(args)]
            return torch.autograd.grad(fn(*leaves), leaves[argnum])[0]
    return derivative


@dataclass(frozen=True)
class DiracGame:
    """One Dirac-GAN and how it is trained."""

    kind: str = "gan"  # "gan" or "wgan": the function f of the value f(psi theta) + f(0)
    regulariser: str = "none"  # "none", "r1", "wgan_gp" or "noise"
    gamma: float = 1.0  # weight of r1 or wgan_gp
    sigma: float = 1.0  # instance noise's standard deviation
    lr: float = 0.1  # step size h of both players
    alternating: bool = False  # False: both step from the same point; True: psi steps after seeing theta's new value

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if self.regulariser not in REGULARISERS:
            raise ValueError(f"regulariser must be one of {REGULARISERS}, got {self.regulariser!r}")
        if self.lr <= 0 or self.gamma < 0 or self.sigma <= 0:
            raise ValueError(f"need lr > 0, gamma >= 0, sigma > 0; got {self.lr}, {self.gamma}, {self.sigma}")

    def f(self, t: torch.Tensor) -> torch.Tensor:
        """f(t): -log(1 + e^-t) = -softplus(-t) for the GAN, t for the WGAN."""
        return -F.softplus(-t) if self.kind == "gan" else t

    def value(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """What G minimises: f(psi theta) + f(0), averaged over instance noise when that is the regulariser."""
        if self.regulariser == "noise":
            eps, w = _gauss_hermite(self.sigma)
            return (w * (self.f(psi * (theta + eps)) + self.f(psi * eps))).sum()
        return self.f(psi * theta) + self.f(torch.zeros_like(theta))

    def d_objective(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """What D maximises: the value minus its regulariser."""
        penalty = {"r1": lambda: self.gamma / 2 * psi ** 2,
                   "wgan_gp": lambda: self.gamma / 2 * (psi.abs() - 1) ** 2}.get(self.regulariser)
        return self.value(theta, psi) - (penalty() if penalty else 0)

    def step(self, point: torch.Tensor, partial: Callable = _transform_partial) -> torch.Tensor:
        """One training step from point = (theta, psi): G descends the value, D ascends its objective.

        Each player's gradient is a partial derivative over its own argument, so under alternating steps D's
        gradient at (theta', psi) does not also flow through theta' back to psi. `partial(fn, argnum)` returns that
        derivative as a function: torch.func.grad by default, which jacobian()'s jacrev can differentiate again;
        trajectory() passes a plain autograd one: about five times faster per step (1,000 simultaneous steps: 3.5 s
        against 0.7 s on a 2-core AVX2 EPYC), and tests/test_dirac.py checks that it visits the same points.
        """
        theta, psi = point[0], point[1]
        new_theta = theta - self.lr * partial(self.value, 0)(theta, psi)
        seen = new_theta if self.alternating else theta  # alternating: D answers G's new generator
        new_psi = psi + self.lr * partial(self.d_objective, 1)(seen, psi)
        return torch.stack([new_theta, new_psi])

    def trajectory(self, theta0: float, psi0: float, steps: int) -> torch.Tensor:
        """The points visited from (theta0, psi0), shape (steps + 1, 2), in float64."""
        point = torch.tensor([theta0, psi0], dtype=torch.float64)
        path = [point]
        for _ in range(steps):
            point = self.step(point, _eager_partial)
            path.append(point)
        return torch.stack(path)

    def jacobian(self) -> torch.Tensor:
        """The 2x2 Jacobian of one training step at the equilibrium (0, 0), by automatic differentiation.

        WGAN-GP's penalty has a kink at psi = 0 (|psi|), so its Jacobian there is not defined: refused.
        """
        if self.regulariser == "wgan_gp":
            raise ValueError("the wgan_gp penalty (|psi| - 1)^2 has no derivative at psi = 0: simulate it instead")
        return torch.func.jacrev(self.step)(torch.zeros(2, dtype=torch.float64))

    def spectral_radius(self) -> float:
        """The largest eigenvalue modulus of the step's Jacobian at (0, 0): > 1 spirals out, 1 circles, < 1 converges
        (near the equilibrium, deviations scale by about this much per step)."""
        return torch.linalg.eigvals(self.jacobian()).abs().max().item()


def measured_growth(path: torch.Tensor, skip: int = 0) -> float:
    """The factor by which the distance to (0, 0) changes per step along a path, from step `skip` on: exp of the
    slope of a least-squares line through log distance against step (a spiral's distance also wobbles within each
    turn; the fit averages the wobble out, where the ratio of two distances would keep it)."""
    r = path[skip:].norm(dim=1)
    if len(r) < 2 or not (r > 0).all():
        raise ValueError(f"need at least 2 points after skip={skip}, none at (0, 0) exactly; got {len(r)} points")
    log_r = r.log()
    t = torch.arange(len(log_r), dtype=log_r.dtype)
    t, log_r = t - t.mean(), log_r - log_r.mean()
    return ((t * log_r).sum() / (t * t).sum()).exp().item()


def _gauss_hermite(sigma: float, n: int = 41) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and weights with sum w g(eps) = E[g(eps)], eps ~ N(0, sigma^2), exact for polynomials of degree < 2n."""
    x, w = _hermite_e(n)
    return torch.tensor(x * sigma), torch.tensor(w / w.sum())


# Once per n: hermegauss costs more than a training step. Arrays, not tensors: caching tensors made during jacrev's
# first call failed later ("level <= current_level INTERNAL ASSERT FAILED", torch 2.14.1).
@lru_cache(maxsize=None)
def _hermite_e(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite points and weights for the weight e^{-x^2/2}: the standard normal up to sqrt(2 pi)."""
    return np.polynomial.hermite_e.hermegauss(n)
