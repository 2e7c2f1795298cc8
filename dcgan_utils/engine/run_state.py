"""The state of a run: models, optimisers, scalers, noise and progress; building it and sampling from it.
(Its checkpoint format is dcgan_utils.engine.checkpoint.)"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.device import get_device, resolve_precision, seed_everything
from dcgan_utils.engine.models import Discriminator, Generator

STATS = ("d_loss", "g_loss", "d_real", "d_fake", "d_fake_g")  # per step; D's outputs as losses.mean_output reads them


@dataclass
class GANState:
    """Models, optimisers, scalers, noise and progress of one run: everything a checkpoint holds."""

    config: TrainConfig
    device: torch.device
    precision: str
    G: Generator
    D: Discriminator
    opt_g: torch.optim.Adam
    opt_d: torch.optim.Adam
    scaler_g: torch.amp.GradScaler  # one scaler per optimiser: each loss is scaled and unscaled on its own
    scaler_d: torch.amp.GradScaler
    ema: AveragedModel | None  # moving average of G's weights (and BatchNorm statistics), or None
    noise: torch.Generator  # draws every z of the run, on the CPU (the same numbers on every device)
    fixed_noise: torch.Tensor  # (num_samples, latent_dim): the same z for every grid
    fixed_labels: torch.Tensor | None  # (num_samples,) classes 0, 1, ..., for a conditional G's grids; else None
    step: int = 0  # generator steps done
    epoch: int = 0  # the epoch in progress (the training loop sets it; top-k training reads it)
    train_seconds: float = 0.0  # training time of the run so far, over all sessions (what max_minutes limits)
    finished: bool = False  # the run reached its end (steps, epochs or time budget), not a signal or an error
    history: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STATS})
    grids: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (step, uint8 images) from fixed_noise
    g_run: torch.nn.Module | None = None  # G or its compiled version, used in the steps
    d_run: torch.nn.Module | None = None

    def autocast(self):
        """Mixed-precision context for forward passes (a no-op in fp32)."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def sampler(self) -> torch.nn.Module:
        """The generator used for pictures and metrics: the EMA copy when there is one."""
        return self.ema.module if self.ema is not None else self.G


def build_state(config: TrainConfig) -> GANState:
    """Seed, pick the device and build fresh models, optimisers and noise for a config."""
    seed_everything(config.seed)
    device = get_device(config.device)
    precision = resolve_precision(config.precision, device)
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    G = Generator(config.image_size, config.channels, config.latent_dim, config.g_width, config.num_classes,
                  config.extra_layer)
    D = Discriminator(config.image_size, config.channels, config.d_width, config.num_classes, config.d_norm,
                      config.minibatch_std, config.extra_layer)
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    if config.compile:  # G's first layer (a 1x1 input) kept NCHW on every device: see compile_models
        G.net[0].to(memory_format=torch.contiguous_format)
    noise = torch.Generator().manual_seed(config.seed)
    state = GANState(
        config, device, precision, G, D,
        torch.optim.Adam(G.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)),
        torch.optim.Adam(D.parameters(), lr=config.d_lr, betas=(config.beta1, config.beta2)),
        torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True) if config.ema else None,
        noise, draw_noise(noise, config.num_samples, config.latent_dim, device),
        cycle_labels(config.num_samples, config.num_classes, device),
    )
    state.g_run, state.d_run = compile_models(G, D, device) if config.compile else (G, D)
    return state


def compile_models(G: torch.nn.Module, D: torch.nn.Module, device: torch.device) -> tuple:
    """torch.compile both models; on CUDA with inductor's own layout choice off (the channels_last field decides).

    PyTorch 2.11's inductor stopped G's first fp32 backward pass on CUDA (make gpu-check, H200, 2026-12-04, notebook
    05's sizes): it expected an NHWC gradient for the weight of G's first layer, whose input is 1x1, and cuDNN
    returned NCHW. Two changes together fixed it there, each alone did not: the layout choice off (here) and that
    weight kept NCHW (build_state)."""
    options = {"layout_optimization": False} if device.type == "cuda" else None
    return torch.compile(G, options=options), torch.compile(D, options=options)


def set_optimiser_settings(state: GANState, scale: float = 1.0) -> None:
    """Give both optimisers the config's learning rates (times scale) and betas: after loading saved optimiser
    states, whose own settings would otherwise win, and at every step of a learning-rate decay."""
    betas = (state.config.beta1, state.config.beta2)
    for opt, lr in ((state.opt_g, state.config.lr), (state.opt_d, state.config.d_lr)):
        for group in opt.param_groups:
            group["lr"], group["betas"] = lr * scale, betas


def draw_noise(noise: torch.Generator, n: int, latent_dim: int, device: torch.device) -> torch.Tensor:
    """n noise vectors z ~ N(0, I) drawn on the CPU by the run's generator, then placed on the device."""
    return torch.randn(n, latent_dim, generator=noise).to(device, non_blocking=True)


def cycle_labels(n: int, num_classes: int, device: str | torch.device = "cpu") -> torch.Tensor | None:
    """Labels 0, 1, ..., num_classes - 1, 0, 1, ... (n of them) for a conditional model; None when unconditional."""
    return torch.arange(n, device=device) % num_classes if num_classes else None


@torch.no_grad()
def generate(state: GANState, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
    """Images in [-1, 1] from noise z with the sampling generator (BatchNorm in inference mode).

    A conditional generator draws the classes in `labels`, or 0, 1, 2, ... in turn when none are given.
    """
    G = state.sampler
    if state.config.num_classes and labels is None:
        labels = cycle_labels(len(z), state.config.num_classes)
    was_training = G.training
    G.eval()
    try:
        with state.autocast():
            return G(z.to(state.device), None if labels is None else labels.to(state.device)).float()
    finally:
        G.train(was_training)
