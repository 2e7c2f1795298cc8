"""Toy GANs: the coverage meter, the 1-D distance, the bilinear game and the toy trainer."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from scipy import stats

from dcgan_utils.course import toy


def test_ring_coverage_counts_modes_and_good_samples():
    gen = torch.Generator().manual_seed(0)
    assert toy.ring_coverage(toy.sample_ring(4000, gen)) == (8, pytest.approx(1.0, abs=0.01))
    one_mode = toy.ring_centres()[3] + toy.RING_STD * torch.randn(1000, 2, generator=gen)
    assert toy.ring_coverage(one_mode)[0] == 1
    assert toy.ring_coverage(torch.zeros(1000, 2)) == (0, 0.0)  # the centre of the ring is no mode


def test_wasserstein_1d_matches_scipy():
    gen = torch.Generator().manual_seed(1)
    a, b = torch.randn(500, generator=gen), 2 + 0.5 * torch.randn(500, generator=gen)
    assert toy.wasserstein_1d(a, b) == pytest.approx(stats.wasserstein_distance(a.numpy(), b.numpy()), rel=1e-5)


@pytest.mark.parametrize("lr", [0.05, 0.3])
def test_simultaneous_steps_spiral_out_and_alternating_steps_orbit(lr):
    n = 100
    sim = toy.bilinear_game(0.6, 0.8, lr, n, simultaneous=True)
    assert torch.allclose(sim[1], torch.tensor([0.6 - lr * 0.8, 0.8 + lr * 0.6], dtype=torch.float64))
    expected = (1 + lr**2) ** (torch.arange(n + 1, dtype=torch.float64) / 2)
    assert torch.allclose(sim.norm(dim=1), expected, rtol=1e-12)
    alt = toy.bilinear_game(0.6, 0.8, lr, n, simultaneous=False)
    x1 = 0.6 - lr * 0.8
    assert torch.allclose(alt[1], torch.tensor([x1, 0.8 + lr * x1], dtype=torch.float64))
    assert alt.norm(dim=1).max() < 1 + 2 * lr and alt.norm(dim=1).min() > 1 - 2 * lr  # bounded: det of the map is 1


def test_toy_config_names_the_bad_field():
    with pytest.raises(ValueError, match="g_steps must be >= 1"):
        toy.ToyConfig(g_steps=0)
    with pytest.raises(ValueError, match="loss must be one of"):
        toy.ToyConfig(loss="vanilla")
    with pytest.raises(ValueError, match="problem must be one of"):
        toy.ToyConfig(problem="moons")


def test_toy_training_is_seeded_and_moves_the_generator_to_the_data():
    config = toy.ToyConfig(problem="1d", steps=600, snapshots=2)
    first, second = toy.train_toy(config), toy.train_toy(config)
    assert first.history == second.history and torch.equal(first.samples(), second.samples())
    untrained = toy.ToyResult(config, toy.mlp(config.latent_dim, 1, config.hidden), None)
    real = toy.sample_data("1d", 2000, torch.Generator().manual_seed(5))
    assert toy.wasserstein_1d(first.samples(), real) < toy.wasserstein_1d(untrained.samples(), real) / 3
    assert [s["step"] for s in first.snapshots] == [300, 600] and first.snapshots[0]["samples"].shape == (2000, 1)


def test_wasserstein_critic_weights_stay_clipped():
    result = toy.train_toy(toy.ToyConfig(loss="wasserstein", steps=50, clip=0.05, snapshots=1))
    assert max(p.abs().max().item() for p in result.D.parameters()) <= 0.05 + 1e-7


def test_generator_chasing_a_fixed_discriminator_collapses():
    balanced = toy.train_toy(toy.ToyConfig(steps=1500, snapshots=1))
    chasing = toy.train_toy(replace(balanced.config, g_steps=5, steps=750))
    assert balanced.score()["modes"] >= 6 and chasing.score()["modes"] <= 2
    assert math.isfinite(chasing.history["g_loss"][-1])
