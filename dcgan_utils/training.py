"""The training engine: one D step, one G step, and a loop with mixed precision, EMA, checkpoints and resume."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from dcgan_utils.checkpoint import check_writable, load_checkpoint, rng_states, save_checkpoint, set_rng_states
from dcgan_utils.config import ARCHITECTURE, TrainConfig
from dcgan_utils.data import ImageData, load_dataset, to_uint8
from dcgan_utils.device import get_device, resolve_precision, seed_everything
from dcgan_utils.interrupt import TrainingInterrupted, stop_on_signals
from dcgan_utils.losses import discriminator_loss, generator_loss
from dcgan_utils.models import Discriminator, Generator

STATS = ("d_loss", "g_loss", "d_real", "d_fake", "d_fake_g")  # per step; D outputs as mean sigmoid probabilities


class NonFiniteLossError(FloatingPointError):
    """A loss became inf or nan: training stopped before saving the broken weights."""


class OutOfMemoryError(RuntimeError):
    """The device ran out of memory; the message says which setting to lower."""


def _out_of_memory(err: Exception, config: TrainConfig, device: torch.device, where: str) -> OutOfMemoryError:
    """A clear out-of-memory error: what ran out, and what to lower."""
    smaller = max(1, config.batch_size // 2)
    return OutOfMemoryError(
        f"out of memory on {device} {where} (batch_size {config.batch_size}, image_size {config.image_size}, widths "
        f"{config.g_width}/{config.d_width}): lower batch_size (for example --batch-size {smaller}), or the widths; "
        f"the last checkpoint written, if any, is kept"
    )


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


def epoch_order(seed: int, epoch: int) -> torch.Generator:
    """The generator that shuffles the data in one epoch: a resumed run sees the same order as an unbroken one."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def d_step(state: GANState, real: torch.Tensor, labels: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Update D once on a real batch and a fresh fake batch; return the fakes (for the G step) and statistics.

    A conditional run passes the real batch's labels: G draws fakes of the same classes, and D sees each image with
    its label (so the class balance of the fakes is the data's).
    """
    cfg = state.config
    y = labels if cfg.num_classes else None
    z = torch.randn(real.shape[0], cfg.latent_dim, generator=state.noise, device=state.device)
    with state.autocast():
        fake = state.g_run(z, y)
        real_logits = state.d_run(real, y)
        fake_logits = state.d_run(fake.detach(), y)  # detach: this step must not move G
        # D step: maximise log D(x) + log(1 - D(G(z)))  ==  minimise BCE(D(x), 1) + BCE(D(G(z)), 0)
        loss = discriminator_loss(real_logits.float(), fake_logits.float(), cfg.loss, cfg.real_label)
    state.opt_d.zero_grad(set_to_none=True)
    state.scaler_d.scale(loss).backward()
    state.scaler_d.step(state.opt_d)
    state.scaler_d.update()
    return fake, [loss.detach(), real_logits.detach().float().sigmoid().mean(), fake_logits.detach().float().sigmoid().mean()]


def g_step(state: GANState, fake: torch.Tensor, labels: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Update G once through the just-updated D on the fakes of the D step (and their labels); return statistics."""
    with state.autocast():
        fake_logits = state.d_run(fake, labels if state.config.num_classes else None)
        # G step, non-saturating kind: maximise log D(G(z))  ==  minimise BCE(D(G(z)), 1) (other kinds: losses.py)
        loss = generator_loss(fake_logits.float(), state.config.loss)
    state.opt_g.zero_grad(set_to_none=True)
    state.scaler_g.scale(loss).backward()
    state.scaler_g.step(state.opt_g)
    state.scaler_g.update()
    if state.ema is not None:
        state.ema.update_parameters(state.G)
    return [loss.detach(), fake_logits.detach().float().sigmoid().mean()]


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


def _flush(state: GANState, pending: list[torch.Tensor]) -> None:
    """Move buffered per-step statistics to the history (one device sync); stop on a non-finite loss."""
    if not pending:
        return
    rows = torch.stack(pending).cpu()
    first = state.step - len(pending) + 1
    bad = (~torch.isfinite(rows[:, :2])).any(1).nonzero()
    if len(bad):
        step = first + int(bad[0])
        raise NonFiniteLossError(
            f"non-finite loss at step {step} (D {rows[bad[0], 0].item()}, G {rows[bad[0], 1].item()}): training "
            f"stopped and no checkpoint was written after it; lower the learning rate, or use precision='fp32'"
        )
    for key, column in zip(STATS, rows.T.tolist()):
        state.history[key].extend(column)
    pending.clear()


def train_gan(
    config: TrainConfig,
    data: ImageData | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
    callback: Callable[[GANState], None] | None = None,
    progress: bool = True,
    prepare: Callable[[GANState], None] | None = None,
    write: bool = True,
) -> GANState:
    """Train a DCGAN; with out_dir, write checkpoint.pt there (and continue from it when resume=True).

    SIGINT (Ctrl-C, a notebook's stop button) or SIGTERM stops after the current step: the checkpoint is saved and
    TrainingInterrupted is raised; resuming from it continues exactly as if nothing had happened.
    `prepare(state)` runs once the state is built (and resumed), before the first step (dcgan_utils.distributed
    wraps the models there); write=False reads out_dir but never writes to it (the other ranks of a DDP run).
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and write:
        check_writable(out)  # an unwritable folder is found now, not at the first save
    if resume and out is None:
        raise ValueError("resume=True needs out_dir, the folder holding checkpoint.pt")
    state = build_state(config)
    if resume:
        payload = load_checkpoint(out / "checkpoint.pt", map_location=state.device)
        if "opt_g" not in payload:
            raise ValueError(f"{out / 'checkpoint.pt'} is a release checkpoint (weights only): it can be sampled and "
                             f"evaluated but not resumed; train a new run instead")
        restore(state, payload)
    if data is None:
        data = load_dataset(config.dataset, config.data_dir, image_size=config.image_size,
                            channels=config.channels, device=state.device)
    try:
        data = data.to(state.device)  # the whole set on the training device: batches are index lookups there
    except torch.OutOfMemoryError as err:
        raise _out_of_memory(err, config, state.device, f"moving {len(data)} images there") from err
    if (data.channels, data.image_size) != (config.channels, config.image_size):
        raise ValueError(f"data are {data.channels}x{data.image_size}x{data.image_size}, the config asks for "
                         f"{config.channels}x{config.image_size}x{config.image_size}")
    if config.num_classes and len(data.classes) != config.num_classes:
        raise ValueError(f"num_classes={config.num_classes}, but the data have {len(data.classes)} classes "
                         f"({', '.join(data.classes[:12])}): set num_classes={len(data.classes)}")
    if prepare is not None:
        prepare(state)
    per_epoch = data.num_batches(config.batch_size)
    total = per_epoch * config.epochs if config.epochs else config.max_steps
    total = min(total, config.max_steps) if config.max_steps else total
    fmt = torch.channels_last if config.channels_last else torch.contiguous_format
    pending: list[torch.Tensor] = []
    start, bar = time.perf_counter(), tqdm(total=total, initial=state.step, disable=not progress, desc="training")

    def save() -> None:
        _flush(state, pending)  # a non-finite loss raises here, before the last good checkpoint is replaced
        if out is not None and write:
            save_checkpoint(checkpoint_payload(state), out / "checkpoint.pt")

    def finished() -> bool:
        return state.step >= total or bool(config.max_minutes and time.perf_counter() - start > 60 * config.max_minutes)

    with stop_on_signals() as stop:
        try:
            while not finished() and not stop.signal_name:
                epoch = state.step // per_epoch
                order, first = epoch_order(config.seed, epoch), state.step - epoch * per_epoch
                for real, labels in data.batches(config.batch_size, order, start=first):
                    real = real.contiguous(memory_format=fmt)
                    fake, d_stats = d_step(state, real, labels)
                    g_stats = g_step(state, fake, labels)
                    state.step += 1
                    pending.append(torch.stack([d_stats[0], g_stats[0], d_stats[1], d_stats[2], g_stats[1]]))
                    if state.step % 25 == 0:
                        _flush(state, pending)
                        bar.set_postfix(D=f"{state.history['d_loss'][-1]:.3f}", G=f"{state.history['g_loss'][-1]:.3f}")
                    if state.step % config.sample_every == 0:
                        grid = generate(state, state.fixed_noise, state.fixed_labels)
                        state.grids.append((state.step, to_uint8(grid).cpu()))
                    if state.step % config.checkpoint_every == 0:
                        save()
                    bar.update(1)
                    if finished() or stop.signal_name:
                        break
                if callback is not None and state.step % per_epoch == 0:  # an epoch has just ended
                    _flush(state, pending)
                    callback(state)
        except torch.OutOfMemoryError as err:
            raise _out_of_memory(err, config, state.device, f"at step {state.step + 1}") from err
        finally:
            bar.close()
        save()
    if stop.signal_name:
        raise TrainingInterrupted(stop.signal_name, state.step, out / "checkpoint.pt" if out else None, state)
    save()
    return state
