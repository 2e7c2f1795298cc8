"""Measuring training speed: images per second of the trainer's own step, and one switch at a time.

On CUDA the clock is a pair of CUDA events around the steps (GPU time, no host timing noise from the asynchronous
queue); elsewhere `time.perf_counter`. Warm-up steps run first (cuDNN's algorithm search, torch.compile) and are
not timed.
"""

from __future__ import annotations

import time
from dataclasses import replace

import torch

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.run_state import STATS, GANState, build_state
from dcgan_utils.engine.training import train_step


def run_steps(state: GANState, data: ImageData, steps: int) -> int:
    """`steps` generator steps with train_gan's own train_step on the data's batches; returns images consumed."""
    per_step = state.config.batch_size * state.config.d_steps
    done, pending = 0, []
    while done < steps:
        for real, labels in data.batches(per_step):
            stats = train_step(state, real, labels)
            pending.append(torch.stack([stats[k] for k in STATS]))
            done += 1
            if done == steps:
                break
    torch.stack(pending).cpu()  # the statistics transfer train_gan does
    return done * per_step


def images_per_second(config: TrainConfig, data: ImageData, steps: int = 20, warmup: int = 3) -> dict:
    """Build a run for config, warm it up, and time `steps` steps: images/s, precision, and peak GPU memory."""
    state = build_state(config)
    data = data.to(state.device)
    run_steps(state, data, warmup)
    if state.device.type == "cuda":
        torch.cuda.synchronize(state.device)
        torch.cuda.reset_peak_memory_stats(state.device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        images = run_steps(state, data, steps)
        end.record()
        torch.cuda.synchronize(state.device)
        seconds = start.elapsed_time(end) / 1000  # elapsed_time is in milliseconds
        peak = torch.cuda.max_memory_allocated(state.device) / 2**30
    else:
        t = time.perf_counter()
        images = run_steps(state, data, steps)
        seconds, peak = time.perf_counter() - t, None
    return {"images_per_s": images / seconds, "precision": state.precision, "peak_gib": peak}


def switch_table(base: TrainConfig, data: ImageData, switches: dict[str, dict], steps: int = 20,
                 warmup: int = 3) -> list[dict]:
    """Images/s of `base`, then of base with each switch alone (name -> TrainConfig changes), with the ratio."""
    rows = [{"switch": "baseline", **images_per_second(base, data, steps, warmup)}]
    for name, changes in switches.items():
        rows.append({"switch": name, **images_per_second(replace(base, **changes), data, steps, warmup)})
    for row in rows:
        row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
    return rows
