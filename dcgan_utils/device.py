"""The one place that picks a device (and its precision) and the one place that seeds random number generators."""

from __future__ import annotations

import random

import numpy as np
import torch


def _mps_available() -> bool:
    """True when Apple's Metal backend is built and usable."""
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def get_device(preference: str | torch.device = "auto") -> torch.device:
    """Return the device to use: "auto" picks cuda, then mps, then cpu; an explicit name is checked."""
    if isinstance(preference, torch.device):
        preference = str(preference)
    name = preference.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {preference!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {preference!r} asked for, but PyTorch sees no CUDA GPU: use 'auto' or 'cpu'")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {preference!r} asked for, but only {torch.cuda.device_count()} CUDA GPU(s) exist: "
                f"use an index below {torch.cuda.device_count()}"
            )
    elif device.type == "mps" and not _mps_available():
        raise ValueError(f"device {preference!r} asked for, but MPS is not available here: use 'auto' or 'cpu'")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {preference!r}: use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return device


def device_name(device: torch.device) -> str:
    """A readable name for a device, with the GPU model on CUDA."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn "auto" into the fastest stable choice for the device; refuse fp16 off CUDA."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA GPU (device is {device}); use 'bf16' or 'fp32'")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return "bf16"  # AVX512-BF16 / AMX: about 2x fp32 for these convolutions
    return "fp32"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (CPU and every GPU) with one integer."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds the CPU and all CUDA/MPS devices
