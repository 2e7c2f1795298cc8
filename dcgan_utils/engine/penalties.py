"""Regularisers of the discriminator, beside its losses: the WGAN-GP gradient penalty on random interpolates
(Gulrajani et al. 2017) and the R1 penalty on real images (Mescheder et al. 2018). Each returns the penalty
without its weight (lambda, gamma / 2), which the training step applies.
"""

from __future__ import annotations

import torch
from torch import nn


def gradient_penalty(D: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """E[(||grad D(x_hat)||_2 - 1)^2] at x_hat = eps x + (1 - eps) G(z), eps ~ U[0, 1] drawn once per image.

    A 1-Lipschitz critic has gradients of norm 1 almost everywhere between the two distributions (Gulrajani et al.,
    Proposition 1), so the penalty pulls the norm towards 1 there. `generator` draws eps on the CPU (the run's noise).
    """
    eps = torch.rand(real.shape[0], generator=generator).to(real.device, real.dtype)
    eps = eps.reshape(-1, *[1] * (real.dim() - 1))  # (N, 1, 1, 1) for images, (N, 1) for points
    mixed = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(_scores(D, mixed, labels).sum(), mixed, create_graph=True)  # per image: D(x_i)
    return (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()


def r1_penalty(D: nn.Module, real: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """E[||grad D(x)||_2^2] on real images: D is kept flat where the data are (Mescheder et al., eq. 9)."""
    real = real.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(_scores(D, real, labels).sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def _scores(D: nn.Module, x: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """D's outputs; a D that takes no labels (the toy MLPs) is called with the points alone."""
    return D(x) if labels is None else D(x, labels)
