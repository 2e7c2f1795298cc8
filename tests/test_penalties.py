"""Regularisers of D against direct computations: the WGAN-GP and R1 penalties image by image with autograd, the
spectral norm against torch.linalg's largest singular value; WGAN without a Lipschitz critic is refused."""

import pytest
import torch

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.models import Discriminator
from dcgan_utils.engine.penalties import gradient_penalty, r1_penalty
from dcgan_utils.engine.training import train_gan
from helpers import tiny_config, tiny_data


def _critic(norm="layer", num_classes=0):
    torch.manual_seed(0)
    return Discriminator(28, 1, 8, num_classes, norm)


def _grad_norm_of_one_image(D, x, label=None):
    """||grad_x D(x)|| for a single image, on its own (no batch): the independent route."""
    x = x[None].clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, None if label is None else label[None]).sum(), x)
    return grad.norm()


@pytest.mark.parametrize("num_classes", [0, 3])
def test_gradient_penalty_equals_the_mean_over_images_of_the_squared_distance_of_each_gradient_norm_from_1(num_classes):
    D = _critic(num_classes=num_classes)
    g = torch.Generator().manual_seed(4)
    real, fake = torch.rand(6, 1, 28, 28, generator=g) * 2 - 1, torch.rand(6, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.arange(6) % num_classes if num_classes else None
    penalty = gradient_penalty(D, real, fake, labels, torch.Generator().manual_seed(9))
    eps = torch.rand(6, 1, 1, 1, generator=torch.Generator().manual_seed(9))  # the same draws
    mixed = eps * real + (1 - eps) * fake
    direct = torch.stack([(_grad_norm_of_one_image(D, mixed[i], None if labels is None else labels[i]) - 1) ** 2
                          for i in range(6)]).mean()
    torch.testing.assert_close(penalty, direct, rtol=1e-4, atol=1e-6)
    (d_grad,) = torch.autograd.grad(penalty, next(D.parameters()))  # it trains D: a second derivative exists
    assert d_grad.abs().sum() > 0


def test_r1_penalty_equals_the_mean_squared_gradient_norm_on_real_images():
    D = _critic()
    real = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 2 - 1
    direct = torch.stack([_grad_norm_of_one_image(D, real[i]) ** 2 for i in range(5)]).mean()
    torch.testing.assert_close(r1_penalty(D, real), direct, rtol=1e-4, atol=1e-7)


def test_spectral_norm_makes_each_convolutions_largest_singular_value_1():
    D = _critic("spectral")
    x = torch.randn(16, 1, 28, 28)
    for _ in range(30):  # power iteration runs once per forward pass in training mode
        D(x)
    convs = [m for m in D.net if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and all(hasattr(m, "parametrizations") for m in convs)
    for conv in convs:
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma.item() == pytest.approx(1.0, abs=0.02)


def test_wasserstein_without_a_lipschitz_critic_is_refused_with_the_alternative():
    with pytest.raises(ValueError, match="'wasserstein' needs a Lipschitz critic.*gradient_penalty=10.*d_norm='layer'"):
        TrainConfig(loss="wasserstein")
    with pytest.raises(ValueError, match="BatchNorm.*d_norm='layer'"):
        TrainConfig(loss="wasserstein", gradient_penalty=10)


def test_a_wgan_gp_run_trains_five_critic_steps_per_generator_step_with_finite_losses():
    config = tiny_config(loss="wasserstein", gradient_penalty=10.0, d_norm="layer", d_steps=5, lr=1e-4, d_lr=1e-4,
                         beta1=0.0, beta2=0.9, epochs=0, max_steps=3, ema=0.0)
    state = train_gan(config, tiny_data(n=512), progress=False)
    assert next(iter(state.opt_d.state.values()))["step"].item() == 15
    assert all(torch.isfinite(torch.tensor(state.history[k])).all() for k in ("d_loss", "g_loss"))


def test_r1_and_spectral_norm_runs_train_and_resume(tmp_path):
    config = tiny_config(r1_penalty=1.0, d_norm="spectral", epochs=0, max_steps=6, precision="fp32")
    straight = train_gan(config, tiny_data(), tmp_path / "a", progress=False)
    train_gan(tiny_config(r1_penalty=1.0, d_norm="spectral", epochs=0, max_steps=3, precision="fp32"), tiny_data(),
              tmp_path / "b", progress=False)
    resumed = train_gan(config, tiny_data(), tmp_path / "b", resume=True, progress=False)
    assert resumed.history == straight.history
