"""Watching a run: a figure that redraws in place while training (curves, D's outputs, the fixed-noise grid), and a
GIF of the grids afterwards."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import matplotlib.pyplot as plt
import torch
from PIL import Image
from torchvision.utils import make_grid

from dcgan_utils.course.figures import CURVE_LABELS
from dcgan_utils.engine.data import to_uint8
from dcgan_utils.engine.losses import reads_as_probability
from dcgan_utils.engine.run_state import STATS, GANState, generate


def smooth(values: list[float], window: int) -> torch.Tensor:
    """Running mean over `window` steps (shorter at the start), so noisy per-step curves stay readable."""
    x = torch.tensor(values, dtype=torch.float64)
    if window <= 1 or len(x) == 0:
        return x
    c = torch.cat([torch.zeros(1, dtype=torch.float64), x.cumsum(0)])
    idx = torch.arange(1, len(x) + 1)
    lo = (idx - window).clamp(min=0)
    return (c[idx] - c[lo]) / (idx - lo)


def grid_image(images: torch.Tensor, nrow: int = 8) -> torch.Tensor:
    """uint8 (N, C, H, W) -> one uint8 (H', W', 3) picture with a white border between images."""
    grid = make_grid(images.float() / 255, nrow=nrow, padding=2, pad_value=1)
    return (grid * 255).round().to(torch.uint8).permute(1, 2, 0)


def run_grids(state: GANState) -> list[tuple[int, torch.Tensor]]:
    """The run's fixed-noise grids [(step, uint8 images)], ending with the grid of its current step: a run saved by an
    older version of the engine may end on an earlier grid, so that last one is drawn here from the loaded weights."""
    grids = list(state.grids)
    if state.step and (not grids or grids[-1][0] != state.step):
        with torch.no_grad():
            grids.append((state.step, to_uint8(generate(state, state.fixed_noise, state.fixed_labels)).cpu()))
    return grids


def training_figure(state: GANState, window: int = 25, nrow: int = 8) -> plt.Figure:
    """Losses, D(x) and D(G(z)), and the latest fixed-noise grid of a run, side by side."""
    h = state.history
    fig, (losses, outputs, grid) = plt.subplots(1, 3, figsize=(13, 3.6), gridspec_kw={"width_ratios": [3, 3, 2.4]})
    for key, ax in (("d_loss", losses), ("g_loss", losses), ("d_real", outputs), ("d_fake", outputs)):
        ax.plot(smooth(h[key], window), lw=1, label=CURVE_LABELS.get(key, key))
    losses.set(xlabel="step", title=f"losses (mean of {window} steps)")
    if reads_as_probability(state.config.loss):
        outputs.set(xlabel="step", ylim=(0, 1), title="D's mean output: real vs generated")
        outputs.axhline(0.5, color="grey", lw=0.5, ls="--")
    else:  # a critic's raw scores: no fixed range, and no 0.5
        outputs.set(xlabel="step", title=f"D's mean raw score ({state.config.loss}): real vs generated")
    for ax in (losses, outputs):
        ax.legend(fontsize=8, loc="upper right")
    grids = run_grids(state)
    if grids:
        step, images = grids[-1]
        grid.imshow(grid_image(images, nrow).numpy())
        grid.set_title(f"fixed noise, step {step}", fontsize=10)
    grid.set_axis_off()
    fig.tight_layout()
    return fig


class LiveView:
    """A train_gan callback that redraws one figure in place at the end of an epoch (in Jupyter), at most once every
    `every_seconds` of wall clock, so a run of many short epochs (a smoke run: 60) does not spend its time drawing.
    `final(state)` draws the finished run into the same place (or once, when the run was loaded and nothing trained).

    Outside a notebook it prints one line per drawing instead, so the same code runs in scripts and tests.
    """

    def __init__(self, window: int = 25, nrow: int = 8, every_seconds: float = 3.0,
                 clock: Callable[[], float] = time.monotonic):
        if every_seconds < 0:
            raise ValueError(f"every_seconds must be >= 0 (0 redraws at every epoch), got {every_seconds}")
        self.window, self.nrow, self.every_seconds, self.clock = window, nrow, every_seconds, clock
        self.handle, self.calls, self.draws, self.drawn_at = None, 0, 0, None

    def __call__(self, state: GANState) -> None:
        self.calls += 1
        missing = [k for k in STATS if k not in state.history]
        if missing:
            raise ValueError(f"LiveView needs a train_gan history with {STATS}; missing {missing}")
        now = self.clock()
        if self.drawn_at is not None and now - self.drawn_at < self.every_seconds:
            return
        self.drawn_at = now
        self._draw(state)

    def final(self, state: GANState) -> None:
        """Draw the run as it ended (its last epoch may have come too soon after the previous drawing)."""
        self._draw(state)

    def _draw(self, state: GANState) -> None:
        self.draws += 1
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            get_ipython = None
        if get_ipython is None or get_ipython() is None:
            h = state.history
            print(f"step {state.step}: D loss {h['d_loss'][-1]:.3f}, G loss {h['g_loss'][-1]:.3f}, "
                  f"D(x) {h['d_real'][-1]:.2f}, D(G(z)) {h['d_fake'][-1]:.2f}")
            return
        fig = training_figure(state, self.window, self.nrow)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)  # the display keeps the picture; the figure itself is not needed again


def save_gif(grids: list[tuple[int, torch.Tensor]], path: str | os.PathLike, nrow: int = 8,
             ms_per_frame: int = 200, hold_last: int = 5, min_width: int = 600) -> Path:
    """Write the fixed-noise grids of a run [(step, uint8 images)] as an animated GIF; the last frame stays longer.

    Each frame is enlarged by a whole factor (every pixel a square block, no blur) to at least min_width pixels.
    """
    if not grids:
        raise ValueError("no grids to animate: train with sample_every smaller than the number of steps")
    pictures = [grid_image(images, nrow) for _, images in grids]
    scale = max(1, -(-min_width // pictures[0].shape[1]))  # ceil(min_width / width)
    frames = [Image.fromarray(p.repeat_interleave(scale, 0).repeat_interleave(scale, 1).numpy()) for p in pictures]
    durations = [ms_per_frame] * (len(frames) - 1) + [ms_per_frame * (1 + hold_last)]  # Pillow merges repeated frames
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path
