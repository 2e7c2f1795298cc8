"""The state of a run: models, optimisers, scalers, noise and progress; building it, sampling from it, and turning
it into a checkpoint and back."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from dcgan_utils.checkpoint import rng_states, set_rng_states
from dcgan_utils.config import ARCHITECTURE, TrainConfig
from dcgan_utils.device import get_device, resolve_precision, seed_everything
from dcgan_utils.models import Discriminator, Generator

STATS = ("d_loss", "g_loss", "d_real", "d_fake", "d_fake_g")  # per step; D outputs as mean sigmoid probabilities


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
    noise: torch.Generator  # draws every z of the run, on the device
    fixed_noise: torch.Tensor  # (num_samples, latent_dim): the same z for every grid
    fixed_labels: torch.Tensor | None  # (num_samples,) classes 0, 1, ..., for a conditional G's grids; else None
    step: int = 0
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
    G = Generator(config.image_size, config.channels, config.latent_dim, config.g_width, config.num_classes)
    D = Discriminator(config.image_size, config.channels, config.d_width, config.num_classes)
    G, D = G.to(device, memory_format=fmt), D.to(device, memory_format=fmt)
    noise = torch.Generator(device=device).manual_seed(config.seed)
    state = GANState(
        config, device, precision, G, D,
        torch.optim.Adam(G.parameters(), lr=config.lr, betas=(config.beta1, config.beta2)),
        torch.optim.Adam(D.parameters(), lr=config.d_lr, betas=(config.beta1, config.beta2)),
        torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        torch.amp.GradScaler(device.type, enabled=precision == "fp16"),
        AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True) if config.ema else None,
        noise, torch.randn(config.num_samples, config.latent_dim, generator=noise, device=device),
        cycle_labels(config.num_samples, config.num_classes, device),
    )
    state.g_run, state.d_run = (torch.compile(G), torch.compile(D)) if config.compile else (G, D)
    return state


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


def checkpoint_payload(state: GANState) -> dict:
    """Everything needed to continue the run exactly where it is."""
    return {
        "config": state.config.to_dict(), "step": state.step, "precision": state.precision,
        "G": state.G.state_dict(), "D": state.D.state_dict(),
        "ema": state.ema.state_dict() if state.ema is not None else None,
        "opt_g": state.opt_g.state_dict(), "opt_d": state.opt_d.state_dict(),
        "scaler_g": state.scaler_g.state_dict(), "scaler_d": state.scaler_d.state_dict(),
        "noise": state.noise.get_state(), "fixed_noise": state.fixed_noise.cpu(), "rng": rng_states(),
        "history": state.history, "grids": state.grids,
    }


def restore(state: GANState, payload: dict) -> None:
    """Load a checkpoint payload into a state built from the same architecture.

    A release checkpoint (dcgan_utils.pretrained) holds weights, fixed noise, history and grids only: those are loaded
    and the optimisers stay fresh, so it can be sampled and evaluated but not resumed.
    """
    saved = TrainConfig.from_dict(payload["config"])
    wrong = [f"{k} (checkpoint {getattr(saved, k)!r}, config {getattr(state.config, k)!r})"
             for k in ARCHITECTURE if getattr(saved, k) != getattr(state.config, k)]
    if wrong:
        raise ValueError(f"checkpoint does not match the config: {', '.join(wrong)}; use the checkpoint's settings")
    state.G.load_state_dict(payload["G"])
    state.D.load_state_dict(payload["D"])
    if state.ema is not None and payload["ema"] is not None:
        state.ema.load_state_dict(payload["ema"])
    state.fixed_noise = payload["fixed_noise"].to(state.device)
    state.step, state.history, state.grids = payload["step"], payload["history"], payload["grids"]
    if "opt_g" not in payload:  # a release checkpoint: nothing more to load
        return
    state.opt_g.load_state_dict(payload["opt_g"])
    state.opt_d.load_state_dict(payload["opt_d"])
    state.scaler_g.load_state_dict(payload["scaler_g"])
    state.scaler_d.load_state_dict(payload["scaler_d"])
    state.noise.set_state(payload["noise"])
    set_rng_states(payload["rng"])
