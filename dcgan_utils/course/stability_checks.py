"""Exercise checkers of notebook 06 (stabilising GAN training), built on exercises.run_check: same verdicts, same
strict mode. References: dirac.DiracGame, engine.penalties.r1_penalty, torch-fidelity's precision."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from dcgan_utils.course.dirac import DiracGame
from dcgan_utils.course.exercises import _random, _stacked, run_check
from dcgan_utils.engine.penalties import r1_penalty
from dcgan_utils.evaluation.precision_recall import precision_recall_of_features


def check_dirac_r1_step(fn: Callable, strict: bool = False) -> bool | None:
    """fn(theta, psi, lr, gamma) -> (theta', psi'): one simultaneous step of the Dirac-GAN (f(t) = -log(1 + e^-t))
    with the R1 penalty gamma/2 psi^2 on D, on tensors of starting points."""
    cases, pairs = [], ((0.1, 1.0), (0.5, 0.3), (1e-3, 10.0), (0.2, 0.0))
    for seed, (lr, gamma) in enumerate(pairs, start=1):
        theta, psi = _random((50,), seed, 2.0), _random((50,), seed + 10, 2.0)
        game = DiracGame(regulariser="r1", gamma=gamma, lr=lr)
        expected = torch.stack([game.step(torch.stack([t, p])) for t, p in zip(theta, psi)], dim=1)
        cases.append(((theta, psi, lr, gamma), expected))
    return run_check("dirac_r1_step", _stacked(fn), cases, strict,
                     tried="random starting points, four (lr, gamma) pairs, gamma 0 among them")


def check_r1_penalty(fn: Callable, strict: bool = False) -> bool | None:
    """fn(D, x) -> E ||grad_x D(x)||^2 over a batch of points x (N, d), differentiable in D's weights."""
    cases = []
    for seed, dim in ((5, 2), (6, 1), (7, 8)):
        torch.manual_seed(seed)
        D = _SmallD(nn.Linear(dim, 16), nn.Tanh(), nn.Linear(16, 1)).double()
        x = _random((64, dim), seed)
        cases.append(((D, x), r1_penalty(D, x).detach()))

    def with_weight_gradient(D, x):  # the penalty must reach D's weights (create_graph), or it regularises nothing
        value = fn(D, x)
        reaches = torch.is_tensor(value) and value.requires_grad and any(
            g is not None and g.abs().sum() > 0
            for g in torch.autograd.grad(value, list(D.parameters()), allow_unused=True))
        if not reaches:
            raise ValueError("the penalty has no gradient for D's weights: pass create_graph=True to autograd.grad")
        return value

    return run_check("r1_penalty", with_weight_gradient, cases, strict, tried="random points in 1, 2 and 8 dimensions")


class _SmallD(nn.Sequential):
    """A small MLP critic whose name in a verdict takes one line."""

    def __repr__(self) -> str:
        return f"a D of {self[0].in_features} -> 16 -> 1"


def check_precision(fn: Callable, strict: bool = False) -> bool | None:
    """fn(real, fake, k) -> the share of fake feature vectors inside some real vector's ball (radius: the distance
    to that real vector's k-th nearest real neighbour), as a 0-d tensor or a float. Extreme cases: fakes that are
    copies of real points (precision 1), and real points with repeated copies (radius 0 for some)."""
    inputs = [(_random((200, 4), seed), _random((150, 4), seed + 10) + shift, k)
              for seed, k, shift in ((8, 3, 0.5), (9, 1, 0.0), (10, 5, 2.0))]
    real = _random((100, 3), 11)
    inputs.append((real, real[:40].clone(), 3))  # copies of real points: all inside
    doubled = torch.cat([real[:30], real[:30]])  # every real point twice: k = 1 radii are 0
    inputs.append((doubled, _random((50, 3), 12), 1))
    cases = [((r, f, k), torch.tensor(precision_recall_of_features(r, f, k=k)["precision"], dtype=torch.float64))
             for r, f, k in inputs]
    return run_check("precision", fn, cases, strict,
                     tried="random clouds, copies of real points, repeated real points")
