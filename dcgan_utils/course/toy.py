"""Toy GANs that train in seconds on a CPU: a 1-D mixture, the 2-D ring of 8 Gaussians, and the game f(x, y) = xy.

The toy trainer uses the same loss functions as the DCGAN trainer (dcgan_utils.engine.losses), so a loss kind compared
here is the one the image notebooks train with.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field

import torch
from torch import nn

from dcgan_utils.engine.config import LOSS_KINDS
from dcgan_utils.engine.losses import discriminator_loss, generator_loss, mean_output
from dcgan_utils.engine.models import MinibatchStd
from dcgan_utils.engine.penalties import gradient_penalty, r1_penalty
from dcgan_utils.course.theory import Mixture1D

PROBLEMS = ("1d", "ring")
OPTIMIZERS = ("adam", "rmsprop")
ONE_D = Mixture1D(means=(-2.0, 2.0), stds=(0.4, 0.4))  # the 1-D data density: two well separated bumps
RING_MODES, RING_RADIUS, RING_STD = 8, 2.0, 0.05  # 8 Gaussians on a circle of radius 2 (Metz et al., 2017)


def ring_centres() -> torch.Tensor:
    """The 8 mode centres of the ring, shape (8, 2)."""
    angle = torch.arange(RING_MODES) * 2 * math.pi / RING_MODES
    return RING_RADIUS * torch.stack([angle.cos(), angle.sin()], dim=1)


def sample_ring(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n points from the ring of 8 Gaussians, shape (n, 2)."""
    mode = torch.randint(RING_MODES, (n,), generator=generator)
    return ring_centres()[mode] + RING_STD * torch.randn(n, 2, generator=generator)


def sample_data(problem: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n data points of a toy problem ("1d": shape (n, 1), "ring": shape (n, 2))."""
    if problem == "1d":
        return ONE_D.sample(n, generator)
    if problem == "ring":
        return sample_ring(n, generator)
    raise ValueError(f"unknown toy problem {problem!r}: choose one of {PROBLEMS}")


def ring_coverage(samples: torch.Tensor, max_std: float = 3.0, min_share: float = 0.01) -> tuple[int, float]:
    """(modes covered, share of good samples): a sample is good within max_std stds of its nearest centre;
    a mode is covered when at least min_share of all samples are good samples of it."""
    dist = torch.cdist(samples.float(), ring_centres())
    nearest, mode = dist.min(dim=1)
    good = nearest <= max_std * RING_STD
    counts = torch.bincount(mode[good], minlength=RING_MODES)
    return int((counts >= min_share * len(samples)).sum()), float(good.float().mean())


def wasserstein_1d(a: torch.Tensor, b: torch.Tensor) -> float:
    """Earth mover's distance between two equal-size 1-D samples: mean |sorted a - sorted b|."""
    a, b = a.flatten().sort().values, b.flatten().sort().values
    if len(a) != len(b):
        raise ValueError(f"need samples of equal size, got {len(a)} and {len(b)}")
    return float((a - b).abs().mean())


def toy_discriminator(dim: int, hidden: int, d_norm: str = "none", minibatch_std: bool = False) -> nn.Sequential:
    """D's MLP (as mlp(dim, 1, hidden) when no remedy is on), with spectral norm and a minibatch-std feature."""
    layers = [nn.Linear(dim, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden), nn.LeakyReLU(0.2)]
    layers += [MinibatchStd()] if minibatch_std else []  # (N, hidden + 1)
    layers.append(nn.Linear(hidden + minibatch_std, 1))  # (N, 1): one logit
    if d_norm == "spectral":
        layers = [nn.utils.parametrizations.spectral_norm(m) if isinstance(m, nn.Linear) else m for m in layers]
    return nn.Sequential(*layers)


def mlp(n_in: int, n_out: int, hidden: int) -> nn.Sequential:
    """Three linear layers with LeakyReLU between them."""
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.LeakyReLU(0.2),  # (N, hidden)
        nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),  # (N, hidden)
        nn.Linear(hidden, n_out),  # (N, n_out): a point for G, one logit for D
    )


@dataclass(frozen=True)
class ToyConfig:
    """Every knob of a toy run."""

    problem: str = "ring"  # "1d" (two bumps on a line) or "ring" (8 Gaussians on a circle)
    loss: str = "non_saturating"  # a kind from dcgan_utils.engine.config.LOSS_KINDS
    steps: int = 2000  # rounds of training (each: d_steps D updates, then g_steps G updates)
    d_steps: int = 1  # discriminator updates per round
    g_steps: int = 1  # generator updates per round (more than 1 lets G chase a fixed D: collapse)
    lr_g: float = 1e-3  # generator step size (Adam or RMSprop)
    lr_d: float = 1e-3  # discriminator step size (Adam or RMSprop)
    betas: tuple[float, float] = (0.5, 0.999)  # Adam betas, as in DCGAN
    optimizer: str = "adam"  # "adam" (DCGAN) or "rmsprop" (the WGAN paper's, PyTorch's defaults besides lr)
    batch_size: int = 256  # samples of data and of noise per update
    hidden: int = 64  # width of both MLPs
    latent_dim: int = 2  # size of the noise vector z
    clip: float = 0.1  # wasserstein without gp: D's weights clipped to [-clip, clip] (K-Lipschitz for some K, not 1)
    d_norm: str = "none"  # "spectral": each of D's linear layers divided by its largest singular value (Miyato et al.)
    minibatch_std: bool = False  # D also sees the spread of its hidden features over groups of 4 (Karras et al. 2018)
    r1: float = 0.0  # gamma of the R1 penalty gamma/2 E||grad D(x)||^2 on real points (Mescheder et al.); 0: off
    gp: float = 0.0  # lambda of WGAN-GP's penalty on interpolates (Gulrajani et al.); 0: off; replaces clipping
    snapshots: int = 4  # how many times to record G's samples and D's output during training
    num_samples: int = 2000  # samples of G recorded per snapshot (from fixed noise)
    seed: int = 0  # seeds data, noise and initial weights

    def __post_init__(self) -> None:
        if self.problem not in PROBLEMS:
            raise ValueError(f"problem must be one of {PROBLEMS}, got {self.problem!r}")
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"loss must be one of {LOSS_KINDS}, got {self.loss!r}")
        for name in ("steps", "d_steps", "g_steps", "batch_size", "hidden", "latent_dim", "snapshots", "num_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.d_norm not in ("none", "spectral"):
            raise ValueError(f"d_norm must be 'none' or 'spectral', got {self.d_norm!r}")
        if self.r1 < 0 or self.gp < 0:
            raise ValueError(f"penalty weights must be >= 0 (0: off), got r1={self.r1}, gp={self.gp}")
        if self.minibatch_std and (self.r1 or self.gp or self.batch_size % 4):
            raise ValueError("minibatch_std mixes the points of a batch: it needs a batch size that is a multiple of 4 "
                             "and no per-point penalty (r1, gp)")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ValueError(f"learning rates must be > 0, got lr_g={self.lr_g}, lr_d={self.lr_d}")


@dataclass
class ToyResult:
    """What a toy run leaves: the models, per-step history and snapshots of G's samples and D's output."""

    config: ToyConfig
    G: nn.Module
    D: nn.Module
    history: dict[str, list[float]] = field(default_factory=dict)
    snapshots: list[dict] = field(default_factory=list)  # {"step", "samples", "d_grid" (None with minibatch_std)}

    def samples(self, n: int = 2000, seed: int = 1) -> torch.Tensor:
        """n fresh samples of the trained generator."""
        with torch.no_grad():
            z = torch.randn(n, self.config.latent_dim, generator=torch.Generator().manual_seed(seed))
            return self.G(z)

    def score(self) -> dict[str, float]:
        """The run's quality: modes covered and good-sample share on the ring, earth mover's distance in 1-D."""
        fake = self.samples(4000)
        if self.config.problem == "ring":
            modes, good = ring_coverage(fake)
            return {"modes": modes, "good": good}
        real = sample_data("1d", 4000, torch.Generator().manual_seed(2))
        return {"emd": wasserstein_1d(fake, real)}


def d_grid_points(problem: str, n: int = 101) -> torch.Tensor:
    """Points where D is recorded: a line for 1-D (n, 1), a square for the ring (n*n, 2)."""
    if problem == "1d":
        return torch.linspace(-5, 5, n).unsqueeze(1)
    axis = torch.linspace(-3, 3, n)
    return torch.cartesian_prod(axis, axis).flip(1)  # rows vary y, columns vary x


def train_toy(config: ToyConfig) -> ToyResult:
    """Train a small MLP GAN on a toy problem with the course's losses; takes seconds on a CPU, on one thread.

    Networks this small gain nothing from a second thread and lose a lot when the other core is busy: 750 rounds
    with k = 5 took 7.7 s on one thread and 143 s on two, on a 2-core Xeon with another process running.
    """
    with one_thread():
        return _train_toy(config)


@contextlib.contextmanager
def one_thread():
    """Run PyTorch's CPU operations on one thread inside the block, as many as before after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train_toy(config: ToyConfig) -> ToyResult:
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)  # initial weights; the notebooks seed once with seed_everything too
    dim = 1 if config.problem == "1d" else 2
    G, D = mlp(config.latent_dim, dim, config.hidden), toy_discriminator(dim, config.hidden, config.d_norm,
                                                                         config.minibatch_std)
    if config.optimizer == "rmsprop":  # WGAN (Arjovsky et al., Algorithm 1): no momentum for the critic
        opt_g = torch.optim.RMSprop(G.parameters(), lr=config.lr_g)
        opt_d = torch.optim.RMSprop(D.parameters(), lr=config.lr_d)
    else:
        opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=config.betas)
        opt_d = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=config.betas)
    fixed_z = torch.randn(config.num_samples, config.latent_dim, generator=gen)
    where = d_grid_points(config.problem)
    record = {round(i * config.steps / config.snapshots) for i in range(1, config.snapshots + 1)}
    result = ToyResult(config, G, D, {k: [] for k in ("d_loss", "g_loss", "d_real", "d_fake")})
    for step in range(1, config.steps + 1):
        for _ in range(config.d_steps):
            real = sample_data(config.problem, config.batch_size, gen)
            fake = G(torch.randn(config.batch_size, config.latent_dim, generator=gen)).detach()
            real_logits, fake_logits = D(real), D(fake)
            # D step: minimise the kind's discriminator loss (for BCE: -[log D(x) + log(1 - D(G(z)))])
            d_loss = discriminator_loss(real_logits, fake_logits, config.loss)
            if config.r1:
                d_loss = d_loss + config.r1 / 2 * r1_penalty(D, real)
            if config.gp:
                d_loss = d_loss + config.gp * gradient_penalty(D, real, fake, generator=gen)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            if config.loss == "wasserstein" and not config.gp:
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-config.clip, config.clip)
        for _ in range(config.g_steps):
            fake_logits = D(G(torch.randn(config.batch_size, config.latent_dim, generator=gen)))
            # G step: minimise the kind's generator loss (for non_saturating: -log D(G(z)))
            g_loss = generator_loss(fake_logits, config.loss)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
        h = result.history
        h["d_loss"].append(d_loss.item())
        h["g_loss"].append(g_loss.item())
        h["d_real"].append(mean_output(real_logits, config.loss).item())  # a probability for the BCE kinds only
        h["d_fake"].append(mean_output(fake_logits, config.loss).item())
        if step in record:
            with torch.no_grad():
                # a minibatch-std D scores a point only within a group of points: no map of D(x) over the plane
                d_grid = None if config.minibatch_std else D(where).squeeze(1)
                result.snapshots.append({"step": step, "samples": G(fixed_z), "d_grid": d_grid})
    return result


def bilinear_game(x0: float, y0: float, lr: float, steps: int, simultaneous: bool = True,
                  extragradient: bool = False) -> torch.Tensor:
    """Gradient steps on f(x, y) = x y, x descending and y ascending; the path, shape (steps + 1, 2).

    simultaneous: both players step from the same (x, y); otherwise y steps after seeing x's new value.
    extragradient: both players first look ahead with a simultaneous step, then step from (x, y) with the
    gradients taken at that look-ahead point (Korpelevich, 1976); `simultaneous` is then ignored.
    """
    x = torch.tensor(float(x0), dtype=torch.float64, requires_grad=True)
    y = torch.tensor(float(y0), dtype=torch.float64, requires_grad=True)
    path = [(x.item(), y.item())]
    for _ in range(steps):
        gx, gy = torch.autograd.grad(x * y, (x, y))  # (y, x)
        if extragradient:
            x_ahead = (x - lr * gx).detach().requires_grad_()
            y_ahead = (y + lr * gy).detach().requires_grad_()
            gx, gy = torch.autograd.grad(x_ahead * y_ahead, (x_ahead, y_ahead))  # the gradients one step ahead
        with torch.no_grad():
            x -= lr * gx  # x minimises x y
        if not simultaneous and not extragradient:
            gy = torch.autograd.grad(x * y, y)[0]  # y sees x's new value
        with torch.no_grad():
            y += lr * gy  # y maximises x y
        path.append((x.item(), y.item()))
    return torch.tensor(path, dtype=torch.float64)
