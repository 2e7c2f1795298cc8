"""Failure-mode meters read from generated images alone: diversity (collapse) and checkerboard energy.

Both work on any batch of images in [-1, 1], so they can be applied to the fixed-noise grids a run saves as it
trains (`GANState.grids`): the history of a run then shows when its samples collapsed onto a few look-alikes, or when
a grid pattern appeared and faded, without training anything else. Compare each number with the same meter on real
images: what is normal depends on the data.
"""

from __future__ import annotations

import torch

from dcgan_utils.engine.data import to_model_range
from dcgan_utils.engine.run_state import GANState


def diversity(images: torch.Tensor) -> float:
    """Mean root-mean-square pixel distance between two different images of the batch (0: all identical)."""
    if images.dim() != 4 or len(images) < 2:
        raise ValueError(f"diversity needs a batch (N, C, H, W) of at least 2 images, got shape {tuple(images.shape)}")
    flat = images.detach().float().flatten(1)
    distances = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist") / flat.shape[1] ** 0.5  # (N, N)
    n = len(flat)
    return (distances.sum() / (n * (n - 1))).item()


def checkerboard_share(images: torch.Tensor) -> float:
    """Share of the images' energy (each channel's mean removed) in period-2 patterns: along rows, columns or both.

    A pure checkerboard gives 1; natural photographs about 0.001, since their energy sits at low frequencies. The
    uneven overlaps of a transposed convolution whose kernel is not a multiple of its stride show up here.
    """
    if images.dim() != 4 or images.shape[-1] % 2 or images.shape[-2] % 2:
        raise ValueError(f"checkerboard_share needs images (N, C, H, W) with even H and W, got {tuple(images.shape)}")
    x = images.detach().float()
    x = x - x.mean(dim=(-2, -1), keepdim=True)
    power = torch.fft.fft2(x).abs() ** 2  # (N, C, H, W); [0, 0] is the mean, now 0
    h, w = x.shape[-2] // 2, x.shape[-1] // 2  # the Nyquist frequencies: patterns that flip sign every pixel
    period_two = power[..., h, w] + power[..., h, 0] + power[..., 0, w]
    total = power.sum()
    return (period_two.sum() / total).item() if total > 0 else 0.0


def grid_meters(state: GANState) -> dict[str, list]:
    """Diversity and checkerboard share of every fixed-noise grid the run saved, with the step it was saved at."""
    if not state.grids:
        raise ValueError("this run saved no fixed-noise grids: train with sample_every below the number of steps")
    images = [to_model_range(grid) for _, grid in state.grids]
    return {"step": [step for step, _ in state.grids], "diversity": [diversity(x) for x in images],
            "checkerboard": [checkerboard_share(x) for x in images]}
