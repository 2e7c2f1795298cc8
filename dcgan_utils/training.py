"""The training engine: one D step, one G step, and a loop with mixed precision, EMA, checkpoints and resume."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dcgan_utils.checkpoint import check_writable, load_checkpoint, save_checkpoint
from dcgan_utils.config import TrainConfig
from dcgan_utils.data import ImageData, load_dataset, to_uint8
from dcgan_utils.interrupt import TrainingInterrupted, stop_on_signals
from dcgan_utils.losses import discriminator_loss, generator_loss
from dcgan_utils.state import STATS, GANState, build_state, checkpoint_payload, generate, restore  # train_gan's API


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
        save()  # still inside stop_on_signals: a signal during this last write cannot cut it short
    if stop.signal_name:
        raise TrainingInterrupted(stop.signal_name, state.step, out / "checkpoint.pt" if out else None, state)
    return state
