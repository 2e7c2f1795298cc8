"""The training engine: one training step (k D steps, one G step) and the loop around it, with mixed precision,
EMA, checkpoints, exact resume, a time budget and stop decisions that every DDP rank agrees on."""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from tqdm.auto import tqdm

from dcgan_utils.engine.checkpoint import (check_writable, load_checkpoint, require_g_state, restore, save_checkpoint,
                                           training_payload)
from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData, load_dataset, to_uint8
from dcgan_utils.engine.interrupt import TrainingInterrupted, stop_on_signals
from dcgan_utils.engine.lock import run_lock
from dcgan_utils.engine.losses import discriminator_loss, generator_loss, mean_output
from dcgan_utils.engine.penalties import gradient_penalty, r1_penalty
from dcgan_utils.engine.run_state import STATS, GANState, build_state, draw_noise, generate, set_optimiser_settings

TOP_K_DECAY = 0.99  # top-k training (Sinha et al. 2020): k shrinks by this factor per epoch, as in public implementations
FLUSH_EVERY = 25  # steps between moving statistics to the history (one device sync) and, under DDP, agreeing to stop


class NonFiniteLossError(FloatingPointError):
    """A loss became inf or nan: training stopped before saving the broken weights."""


class RunExistsError(ValueError):
    """The output folder already holds a run, and neither resume nor overwrite was asked for."""


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


def top_k_count(config: TrainConfig, epoch: int, n: int) -> int:
    """How many of n fakes G learns from in this epoch: n * 0.99**epoch, never below config.top_k * n (top-k
    training, Sinha et al. 2020, anneals k from the batch size to a floor; 0.99 per epoch is the value public
    implementations use)."""
    return min(n, max(math.ceil(config.top_k * n), round(n * TOP_K_DECAY ** epoch)))


def lr_scale(config: TrainConfig, train_seconds: float, step: int, total: int) -> float:
    """lr_decay's multiplier of both learning rates: 1 at the start, falling linearly to 0 at the run's end (its
    max_minutes of training time when set, else its total steps)."""
    done = train_seconds / (60 * config.max_minutes) if config.max_minutes else step / total
    return max(0.0, 1.0 - done)


def fresh_fakes(state: GANState, n: int, labels: torch.Tensor | None = None) -> torch.Tensor:
    """n images from G on new noise from the run's generator (of the given classes, for a conditional run)."""
    z = draw_noise(state.noise, n, state.config.latent_dim, state.device)
    with state.autocast():
        return state.g_run(z, labels if state.config.num_classes else None)


def d_step(state: GANState, real: torch.Tensor, labels: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Update D once on a real batch and a fresh fake batch; return the fakes (for the G step) and statistics.

    A conditional run passes the real batch's labels: G draws fakes of the same classes, and D sees each image with
    its label (so the class balance of the fakes is the data's).
    """
    cfg = state.config
    y = labels if cfg.num_classes else None
    fake = fresh_fakes(state, real.shape[0], labels)
    with state.autocast():
        real_logits = state.d_run(real, y)
        fake_logits = state.d_run(fake.detach(), y)  # detach: this step must not move G
        # D step: maximise log D(x) + log(1 - D(G(z)))  ==  minimise BCE(D(x), 1) + BCE(D(G(z)), 0)
        loss = discriminator_loss(real_logits.float(), fake_logits.float(), cfg.loss, cfg.real_label)
    # penalties in fp32, on the plain D (a second derivative: not through torch.compile or DDP)
    if cfg.gradient_penalty:  # WGAN-GP: lambda E[(||grad D(x_hat)|| - 1)^2] on interpolates of real and fake
        loss = loss + cfg.gradient_penalty * gradient_penalty(state.D, real.float(), fake.float(), y, state.noise)
    if cfg.r1_penalty:  # R1: gamma / 2 E[||grad D(x)||^2] on the real images
        loss = loss + cfg.r1_penalty / 2 * r1_penalty(state.D, real.float(), y)
    state.opt_d.zero_grad(set_to_none=True)
    state.scaler_d.scale(loss).backward()
    state.scaler_d.step(state.opt_d)
    state.scaler_d.update()
    return fake, {"d_loss": loss.detach(), "d_real": mean_output(real_logits, cfg.loss),
                  "d_fake": mean_output(fake_logits, cfg.loss)}


def g_step(state: GANState, fake: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Update G once through the just-updated D on the fakes of the D step (and their labels); return statistics."""
    with state.autocast():
        fake_logits = state.d_run(fake, labels if state.config.num_classes else None)
        scores = fake_logits.float()
        keep = top_k_count(state.config, state.epoch, len(scores))
        if keep < len(scores):  # top-k: G's loss counts only the fakes D finds most real (higher logit: more real)
            scores = scores.topk(keep).values
        # G step, non-saturating kind: maximise log D(G(z))  ==  minimise BCE(D(G(z)), 1) (other kinds: losses.py)
        loss = generator_loss(scores, state.config.loss)
    state.opt_g.zero_grad(set_to_none=True)
    state.scaler_g.scale(loss).backward()
    state.scaler_g.step(state.opt_g)
    state.scaler_g.update()
    if state.ema is not None:
        state.ema.update_parameters(state.G)
    return {"g_loss": loss.detach(), "d_fake_g": mean_output(fake_logits, state.config.loss)}


def train_step(state: GANState, real: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """One generator step of Algorithm 1 (Goodfellow et al. 2014): k = config.d_steps D steps, each on its own
    slice of `real` (which holds k batches), then one G step on the last D step's fakes (and, with
    config.g_steps > 1, further G steps on fresh noise).

    Returns the statistics named in STATS, as 0-d tensors on the device (D's are those of its last step).
    """
    k = state.config.d_steps
    if real.shape[0] % k:
        raise ValueError(f"a step needs d_steps={k} equal batches, got {real.shape[0]} images")
    fmt = torch.channels_last if state.config.channels_last else torch.contiguous_format
    chunks = zip(real.chunk(k), labels.chunk(k) if labels is not None else [None] * k)
    for batch, batch_labels in chunks:
        fake, d_stats = d_step(state, batch.contiguous(memory_format=fmt), batch_labels)
    g_stats = g_step(state, fake, batch_labels)
    for _ in range(state.config.g_steps - 1):  # further G steps, each on fresh fakes of the same classes
        g_stats = g_step(state, fresh_fakes(state, fake.shape[0], batch_labels), batch_labels)
    return {**d_stats, **g_stats}


def stats_row(stats: dict[str, torch.Tensor]) -> torch.Tensor:
    """One step's statistics as a row in the order of STATS (rows are stacked, then moved to the history)."""
    return torch.stack([stats[k] for k in STATS])


def _flush(state: GANState, pending: list[torch.Tensor], agree: Callable[[bool], bool]) -> None:
    """Move buffered per-step statistics to the history (one device sync); stop on a non-finite loss (on any rank)."""
    rows = torch.stack(pending).cpu() if pending else torch.zeros(0, len(STATS))
    first = state.step - len(pending) + 1
    bad = (~torch.isfinite(rows[:, :2])).any(1).nonzero()
    if agree(bool(len(bad))):
        where = (f"at step {first + int(bad[0])} (D {rows[bad[0], 0].item()}, G {rows[bad[0], 1].item()})"
                 if len(bad) else "on another process of this run")
        raise NonFiniteLossError(
            f"non-finite loss {where}: training stopped and no checkpoint was written after it; lower the learning "
            f"rate, or use precision='fp32'"
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
    overwrite: bool = False,
    batch_size: int | None = None,
    agree: Callable[[bool], bool] | None = None,
) -> GANState:
    """Train a DCGAN; with out_dir, write checkpoint.pt there (and continue from it when resume=True).

    A folder that already holds a run is refused unless resume=True (continue it) or overwrite=True (replace it),
    and a folder another live process is training into is refused (dcgan_utils.engine.lock).
    SIGINT (Ctrl-C, a notebook's stop button) or SIGTERM stops after the current step: the checkpoint is saved and
    TrainingInterrupted is raised; resuming from it continues exactly as if nothing had happened (bit for bit on
    the device that wrote it, on a CPU; on CUDA, cuDNN's algorithm choice may differ in the last bits).
    max_minutes limits the run's own training time, over every session of it (kept in the checkpoint).
    For DistributedDataParallel (dcgan_utils.engine.distributed): `prepare(state)` runs once the state is built
    (and resumed), before the first step; write=False reads out_dir but never writes to it; batch_size is this
    process's share of config.batch_size; agree(flag) returns True on every process when it is True on any, so all
    processes stop at the same step.
    """
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise ValueError("resume=True needs out_dir, the folder holding checkpoint.pt")
    writes = out is not None and write
    if writes:
        check_writable(out)  # an unwritable folder is found now, not at the first save
    with run_lock(out) if writes else contextlib.nullcontext():
        if writes and not resume and not overwrite and (out / "checkpoint.pt").is_file():
            raise RunExistsError(f"{out} already holds a run (checkpoint.pt): continue it with resume=True "
                                 f"(CLI: --resume), or replace it with overwrite=True (CLI: --overwrite)")
        return _train(config, data, out, resume, callback, progress, prepare, write, batch_size, agree)


def _train(config, data, out, resume, callback, progress, prepare, write, batch_size, agree) -> GANState:
    """train_gan's work, once the output folder is checked and locked."""
    agree = agree or bool
    state = build_state(config)
    if resume:
        payload = load_checkpoint(out / "checkpoint.pt")
        restore(state, payload)
        if state.grids and state.grids[-1][0] == state.step and state.step % config.sample_every:
            state.grids.pop()  # the last session's closing grid, off the schedule: this session draws its own at its end
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
    g_optimiser = state.opt_g
    if prepare is not None:
        prepare(state)
    if resume and state.opt_g is g_optimiser:  # G resumes with the saved optimiser: its Adam moments must be there
        require_g_state(payload)
    per_step = (batch_size or config.batch_size) * config.d_steps  # images one generator step consumes
    per_epoch = data.num_batches(per_step)
    if per_epoch == 0:
        raise ValueError(f"one step needs batch_size x d_steps = {per_step} images, the data have {len(data)}: "
                         f"lower batch_size or d_steps")
    total = per_epoch * config.epochs if config.epochs else config.max_steps
    total = min(total, config.max_steps) if config.max_steps else total
    pending: list[torch.Tensor] = []
    session_start, seconds_before = time.perf_counter(), state.train_seconds
    bar = tqdm(total=total or None, initial=state.step, disable=not progress, desc="training")

    def clock() -> None:
        state.train_seconds = seconds_before + time.perf_counter() - session_start

    def over_budget() -> bool:
        clock()
        return config.budget_spent(state.train_seconds)

    def save() -> None:
        _flush(state, pending, agree)  # a non-finite loss raises here, before the last good checkpoint is replaced
        clock()
        if out is not None and write:
            save_checkpoint(training_payload(state), out / "checkpoint.pt")

    with stop_on_signals() as stop:
        signalled = budget_spent = False

        def should_stop() -> bool:  # each flag agreed by every process (no-ops in a single process)
            nonlocal signalled, budget_spent
            signalled, budget_spent = agree(bool(stop.signal_name)), agree(over_budget())
            return signalled or budget_spent

        halt = should_stop()
        try:
            while not (total and state.step >= total) and not halt:
                epoch = state.epoch = state.step // per_epoch
                order, first = epoch_order(config.seed, epoch), state.step - epoch * per_epoch
                for real, labels in data.batches(per_step, order, start=first):
                    if config.lr_decay:
                        clock()
                        set_optimiser_settings(state, lr_scale(config, state.train_seconds, state.step, total))
                    stats = train_step(state, real, labels)
                    state.step += 1
                    pending.append(stats_row(stats))
                    if state.step % FLUSH_EVERY == 0:
                        _flush(state, pending, agree)
                        bar.set_postfix(D=f"{state.history['d_loss'][-1]:.3f}", G=f"{state.history['g_loss'][-1]:.3f}")
                    if state.step % config.sample_every == 0:
                        grid = generate(state, state.fixed_noise, state.fixed_labels)
                        state.grids.append((state.step, to_uint8(grid).cpu()))
                    if state.step % config.checkpoint_every == 0:
                        save()
                    bar.update(1)
                    # a time budget or a signal can differ between DDP processes: they agree at every flush
                    if agree is bool or state.step % FLUSH_EVERY == 0:
                        halt = should_stop()
                    if halt or (total and state.step >= total):
                        break
                if callback is not None and state.step % per_epoch == 0:  # an epoch has just ended
                    _flush(state, pending, agree)
                    callback(state)
        except torch.OutOfMemoryError as err:
            raise _out_of_memory(err, config, state.device, f"at step {state.step + 1}") from err
        finally:
            bar.close()
        if state.step and (not state.grids or state.grids[-1][0] != state.step):
            # the last step always leaves a grid: a run's final picture is drawn by its final weights
            grid = generate(state, state.fixed_noise, state.fixed_labels)
            state.grids.append((state.step, to_uint8(grid).cpu()))
        state.finished = not signalled
        save()  # still inside stop_on_signals: a signal during this last write cannot cut it short
    if signalled:
        raise TrainingInterrupted(stop.signal_name or "a signal to another process", state.step,
                                  out / "checkpoint.pt" if out and write else None, state)
    return state
