"""GAN losses computed from the discriminator's raw logits, numerically stable at any logit.

D(x) = sigmoid(l) for a logit l. The two log-terms of the GAN value function, written without a sigmoid:
    log D(x)       = log sigmoid(l)     = -softplus(-l)
    log(1 - D(x))  = log sigmoid(-l)    = -softplus(l)
softplus(t) = log(1 + e^t) is evaluated by PyTorch without overflow, so +-100 logits give finite losses and
gradients, where log(sigmoid(l)) underflows to log(0) = -inf.

Kinds (D minimises discriminator_loss, G minimises generator_loss):
    minimax         D: BCE(D(x), real_label) + BCE(D(G(z)), 0)   G:  E[log(1 - D(G(z)))]   (saturating)
    non_saturating  D: as minimax                                G: -E[log D(G(z))]
    least_squares   D: 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]   G: 1/2 E[(D(G(z)) - 1)^2] (raw outputs, a=0 b=1 c=1)
    hinge           D: E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]  G: -E[D(G(z))]
    wasserstein     D: E[D(G(z))] - E[D(x)]                      G: -E[D(G(z))]        (needs a Lipschitz D)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dcgan_utils.engine.config import BCE_KINDS, LOSS_KINDS


def _check_kind(kind: str) -> None:
    """Raise a clear error for an unknown loss kind."""
    if kind not in LOSS_KINDS:
        raise ValueError(f"unknown loss kind {kind!r}: choose one of {', '.join(LOSS_KINDS)}")


def bce_with_logits(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy -[t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))], from logits, stable."""
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: str = "non_saturating", real_label: float = 1.0
) -> torch.Tensor:
    """Loss the discriminator minimises, from its logits on real images and on generated ones."""
    _check_kind(kind)
    if not 0.0 < real_label <= 1.0:
        raise ValueError(f"real_label must be in (0, 1] (1 = no smoothing, 0.9 = one-sided smoothing), got {real_label}")
    if real_label != 1.0 and kind not in BCE_KINDS:
        raise ValueError(
            f"label smoothing (real_label < 1) is for the BCE kinds only ({', '.join(BCE_KINDS)}), not {kind!r}: "
            f"use real_label=1.0"
        )
    if kind in BCE_KINDS:
        # maximise log D(x) + log(1 - D(G(z)))  ==  minimise BCE(D(x), real_label) + BCE(D(G(z)), 0)
        return bce_with_logits(real_logits, real_label) + bce_with_logits(fake_logits, 0.0)
    if kind == "least_squares":
        # pull D(x) towards b = 1 and D(G(z)) towards a = 0
        return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()
    if kind == "hinge":
        # a margin of 1 on each side; no gradient once a sample is classified with margin
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    # wasserstein: D (the critic) widens the gap E[D(x)] - E[D(G(z))]
    return fake_logits.mean() - real_logits.mean()


def generator_loss(fake_logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """Loss the generator minimises, from the discriminator's logits on generated images."""
    _check_kind(kind)
    if kind == "minimax":
        # minimise E[log(1 - D(G(z)))] = -E[softplus(l)] = -BCE(D(G(z)), 0): flat when D rejects the fakes
        return -bce_with_logits(fake_logits, 0.0)
    if kind == "non_saturating":
        # minimise -E[log D(G(z))] = BCE(D(G(z)), 1): steep when D rejects the fakes
        return bce_with_logits(fake_logits, 1.0)
    if kind == "least_squares":
        # pull D(G(z)) towards c = 1
        return 0.5 * (fake_logits - 1).pow(2).mean()
    # hinge and wasserstein: raise the critic's score of the fakes
    return -fake_logits.mean()


def mean_output(logits: torch.Tensor, kind: str = "non_saturating") -> torch.Tensor:
    """D's mean output as its loss reads it: the mean probability sigmoid(l) for the BCE kinds, the mean raw score
    for the others (a least-squares D aims at 1 and 0; a hinge or Wasserstein critic's scores have no upper bound,
    and a sigmoid of them reads 1.00 for real and fake alike once they grow)."""
    _check_kind(kind)
    return logits.detach().float().sigmoid().mean() if kind in BCE_KINDS else logits.detach().float().mean()


def reads_as_probability(kind: str) -> bool:
    """Whether mean_output of this kind is a probability in [0, 1] (0.5: D cannot tell)."""
    _check_kind(kind)
    return kind in BCE_KINDS
