"""The Dirac-GAN: one step against the hand-written update, each Jacobian against its closed form, and the
eigenvalues' prediction against simulated trajectories."""

import math

import pytest
import torch

from dcgan_utils.course.dirac import DiracGame, measured_growth

F1 = {"gan": 0.5, "wgan": 1.0}  # f'(0): sigmoid(0) for f(t) = -log(1 + e^-t); 1 for f(t) = t
F2 = {"gan": -0.25, "wgan": 0.0}  # f''(0): -sigmoid(0)(1 - sigmoid(0)); 0 for a linear f


def test_one_step_is_the_hand_written_update():
    theta, psi, h = 0.7, -0.4, 0.1
    fprime = 1 / (1 + math.exp(theta * psi))  # f'(t) = sigmoid(-t) at t = psi theta
    game = DiracGame(lr=h)
    new = game.step(torch.tensor([theta, psi], dtype=torch.float64))
    new_theta = theta - h * psi * fprime  # G descends d/dtheta f(psi theta) = psi f'(psi theta)
    assert new.tolist() == pytest.approx([new_theta, psi + h * theta * fprime])  # D ascends, seeing the old theta
    alt = DiracGame(lr=h, alternating=True).step(torch.tensor([theta, psi], dtype=torch.float64))
    assert alt.tolist() == pytest.approx([new_theta, psi + h * new_theta / (1 + math.exp(new_theta * psi))])
    r1 = DiracGame(lr=h, regulariser="r1", gamma=0.5).step(torch.tensor([theta, psi], dtype=torch.float64))
    assert r1[1].item() == pytest.approx(psi + h * (theta * fprime - 0.5 * psi))
    # WGAN-GP: f(t) = t, D ascends psi theta - gamma/2 (|psi| - 1)^2; |psi| < 1 is pushed out towards 1, on each side
    for psi0 in (0.5, -0.5):
        gp = DiracGame(kind="wgan", regulariser="wgan_gp", gamma=2.0, lr=h).step(
            torch.tensor([theta, psi0], dtype=torch.float64))
        pull = -2.0 * (abs(psi0) - 1) * math.copysign(1, psi0)
        assert gp.tolist() == pytest.approx([theta - h * psi0, psi0 + h * (theta + pull)])


@pytest.mark.parametrize("kind", ["gan", "wgan"])
@pytest.mark.parametrize("regulariser,c", [("none", lambda g: 0.0), ("r1", lambda g: -g.gamma),
                                           ("noise", lambda g: 2 * F2[g.kind] * g.sigma ** 2)])
@pytest.mark.parametrize("alternating", [False, True])
def test_the_jacobian_at_the_equilibrium_has_its_closed_form(kind, regulariser, c, alternating):
    game = DiracGame(kind=kind, regulariser=regulariser, gamma=0.5, sigma=0.8, lr=0.1, alternating=alternating)
    a = game.lr * F1[kind]  # h f'(0); c is d^2/dpsi^2 of D's objective at 0: -gamma (R1), 2 f''(0) sigma^2 (noise)
    d = 1 + game.lr * c(game) - (a * a if alternating else 0)  # alternating: psi answers theta - a psi
    torch.testing.assert_close(game.jacobian(), torch.tensor([[1, -a], [a, d]], dtype=torch.float64))


@pytest.mark.parametrize("game,expected", [
    (DiracGame(), math.sqrt(1 + 0.05 ** 2)),  # simultaneous: |1 +- i h f'(0)| > 1, spirals out
    (DiracGame(alternating=True), 1.0),  # alternating: determinant 1, complex pair on the unit circle
    (DiracGame(regulariser="r1", gamma=0.5), None),
    (DiracGame(regulariser="noise", sigma=1.0), None),
    (DiracGame(kind="wgan"), math.sqrt(1 + 0.1 ** 2)),
])
def test_the_eigenvalues_predict_the_simulated_growth_per_step(game, expected):
    predicted = game.spectral_radius()
    if expected is not None:
        assert predicted == pytest.approx(expected, rel=1e-12)
    path = game.trajectory(1e-4, 0.0, 900)  # small: the linearisation holds
    assert measured_growth(path, skip=100) == pytest.approx(predicted, abs=1e-4)


def test_regularisers_converge_from_afar_and_wgan_gp_has_no_jacobian_at_the_kink():
    for game in (DiracGame(regulariser="r1", gamma=0.5), DiracGame(regulariser="noise")):
        assert game.trajectory(1.0, 1.0, 1000)[-1].norm() < 1e-3
    assert DiracGame().trajectory(1.0, 1.0, 1000)[-1].norm() > 1.5  # sqrt(2) at the start, and growing
    with pytest.raises(ValueError, match="no derivative at psi = 0"):
        DiracGame(kind="wgan", regulariser="wgan_gp").jacobian()
    with pytest.raises(ValueError, match="regulariser must be one of"):
        DiracGame(regulariser="dropout")


@pytest.mark.parametrize("game", [DiracGame(), DiracGame(alternating=True), DiracGame(regulariser="r1", gamma=0.5),
                                  DiracGame(regulariser="noise", sigma=0.8, alternating=True),
                                  DiracGame(kind="wgan", regulariser="wgan_gp", alternating=True)],
                         ids=["simultaneous", "alternating", "r1", "noise-alternating", "wgan_gp-alternating"])
def test_a_trajectory_is_step_after_step(game):
    """trajectory() takes its derivatives by plain autograd (faster), step() by torch.func: the same points, also
    when called under torch.no_grad() (as a plotting cell might)."""
    path = game.trajectory(0.7, -0.4, 5)
    with torch.no_grad():
        assert torch.equal(game.trajectory(0.7, -0.4, 5), path)
    point = path[0]
    for i in range(1, 6):
        point = game.step(point)
        assert torch.equal(path[i], point), f"step {i}: {path[i].tolist()} != {point.tolist()}"
