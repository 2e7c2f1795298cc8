"""What a torch.profiler run put on the GPU: its kernels and copies, and the time they took (step_profile.py and
cuda_graph_step.py read a profile the same way)."""

from __future__ import annotations

import torch


def gpu_kernels(prof: torch.profiler.profile) -> list:
    """The profile's kernels and copies on CUDA devices, without user annotations (an optimiser's annotation spans
    its kernels, which would count them twice)."""
    return [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
            and not getattr(e, "is_user_annotation", False)]


def gpu_seconds(kernels: list) -> float:
    """The summed durations of the kernels and copies, in seconds."""
    return sum(e.time_range.elapsed_us() for e in kernels) / 1e6
