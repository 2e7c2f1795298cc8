"""Measuring training speed: images per second of the trainer's own step, and one switch at a time, in
interleaved rounds.

On CUDA the clock is a pair of CUDA events around the steps (GPU time, no host timing noise from the asynchronous
queue); elsewhere `time.perf_counter`. Warm-up steps run first (cuDNN's algorithm search, torch.compile) and are
not timed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.device import get_device
from dcgan_utils.engine.run_state import GANState, build_state
from dcgan_utils.engine.training import stats_row, train_step


def run_steps(state: GANState, data: ImageData, steps: int) -> int:
    """`steps` generator steps with train_gan's own train_step on the data's batches; returns images consumed."""
    per_step = state.config.batch_size * state.config.d_steps
    done, pending = 0, []
    while done < steps:
        for real, labels in data.batches(per_step):
            stats = train_step(state, real, labels)
            pending.append(stats_row(stats))
            done += 1
            if done == steps:
                break
    torch.stack(pending).cpu()  # the statistics transfer train_gan does
    return done * per_step


class Timed:
    """One configuration's run, built and warmed up once, then timed in as many rounds as asked.

    Its peak GPU memory is what building, warming up and stepping this run added to what was already allocated.
    `prepare`, when given, changes the built run before its warm-up (a benchmark trying what TrainConfig has no
    field for).
    """

    def __init__(self, config: TrainConfig, data: ImageData, warmup: int = 3,
                 prepare: Callable[[GANState], None] | None = None):
        cuda = get_device(config.device).type == "cuda"
        before = torch.cuda.memory_allocated() if cuda else 0
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        self.state = build_state(config)
        if prepare is not None:
            prepare(self.state)
        self.data = data.to(self.state.device)
        run_steps(self.state, self.data, warmup)  # cuDNN's algorithm search, torch.compile: not timed
        self.peak_gib = (torch.cuda.max_memory_allocated() - before) / 2**30 if cuda else None
        self.rates: list[float] = []

    def time_round(self, steps: int) -> float:
        """Images/s of `steps` steps: CUDA events on a GPU, perf_counter elsewhere."""
        if self.state.device.type == "cuda":
            torch.cuda.synchronize(self.state.device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            images = run_steps(self.state, self.data, steps)
            end.record()
            torch.cuda.synchronize(self.state.device)
            seconds = start.elapsed_time(end) / 1000  # elapsed_time is in milliseconds
        else:
            t = time.perf_counter()
            images = run_steps(self.state, self.data, steps)
            seconds = time.perf_counter() - t
        self.rates.append(images / seconds)
        return self.rates[-1]

    def result(self) -> dict:
        """The median rate over the rounds, the precision used and the peak GPU memory (None off CUDA)."""
        return {"images_per_s": statistics.median(self.rates), "precision": self.state.precision,
                "peak_gib": self.peak_gib}


def images_per_second(config: TrainConfig, data: ImageData, steps: int = 20, warmup: int = 3,
                      rounds: int = 1) -> dict:
    """Build a run for config, warm it up, and time `steps` steps per round: images/s (median over the rounds),
    precision, and peak GPU memory."""
    timed = Timed(config, data, warmup)
    for _ in range(rounds):
        timed.time_round(steps)
    return timed.result()


def switch_table(base: TrainConfig, data: ImageData, switches: dict[str, dict], steps: int = 20,
                 warmup: int = 3, rounds: int = 3) -> list[dict]:
    """Images/s of `base` and of base with each switch alone (name -> TrainConfig changes), with the ratio.

    Every configuration is built and warmed up first; then the rounds go baseline, switch 1, switch 2, ..., again
    and again, and each row is the median of its rounds: rows compared in one table saw the same machine state,
    which a CPU shared with other work (or a GPU warming up) does not keep for long.
    """
    timed = {"baseline": Timed(base, data, warmup)}
    timed.update({name: Timed(replace(base, **changes), data, warmup) for name, changes in switches.items()})
    for _ in range(rounds):
        for run in timed.values():
            run.time_round(steps)
    rows = [{"switch": name, **run.result()} for name, run in timed.items()]
    for row in rows:
        row["speedup"] = row["images_per_s"] / rows[0]["images_per_s"]
    return rows
