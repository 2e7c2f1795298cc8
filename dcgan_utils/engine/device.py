"""The one place that picks a device (and its precision) and the one place that seeds random number generators."""

from __future__ import annotations

import os
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


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that compute bf16 natively


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux reports them in /proc/cpuinfo; empty elsewhere (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_model() -> str:
    """lscpu's model name and the CPU's bf16-relevant flags: print it with every CPU number (CPUs differ by 3x)."""
    import subprocess

    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, StopIteration):
        model = "unknown CPU"
    flags = sorted({"avx512_bf16", "amx_bf16", "avx2", "avx512f"} & cpu_flags())
    return f"{model} (flags: {', '.join(flags) or 'none of avx2/avx512f/avx512_bf16/amx_bf16'})"


def machine_summary() -> str:
    """cpu_model(), the thread count and the PyTorch version: the machine line a shipped CPU measurement carries."""
    return f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def available_cpus() -> int:
    """The logical CPUs this process may use: a container's or taskset's on Linux, not the host's os.cpu_count()."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def ran_on(device: torch.device | str = "cpu") -> str:
    """Where a notebook's timings were measured, for its last line: the device (with the GPU's model on CUDA), the
    CPU's model and bf16 flags, the logical CPUs this process may use, PyTorch's thread setting and its version."""
    threads = torch.get_num_threads()
    return (f"{device_name(torch.device(device))}: {cpu_model()}, {available_cpus()} logical CPUs available, PyTorch "
            f"set to {threads} thread{'' if threads == 1 else 's'}, torch {torch.__version__}")


def auto_precision(device_type: str, cuda_capability: tuple[int, int] | None = None,
                   flags: frozenset[str] = frozenset()) -> str:
    """The precision "auto" picks: what the hardware computes natively, never an emulation.

    CUDA: bf16 from compute capability 8.0 on (Ampere and newer have bf16 tensor cores), else fp16 with a
    GradScaler (T4, V100: torch.cuda.is_bf16_supported() is also true there, through slow emulation).
    CPU: bf16 only with the avx512_bf16 or AMX flags (oneDNN also runs bf16 on plain AVX-512 and AVX2 CPUs,
    several times slower than fp32 there), else fp32. Any other device: fp32.
    """
    if device_type == "cuda":
        return "bf16" if cuda_capability is not None and cuda_capability >= (8, 0) else "fp16"
    if device_type == "cpu" and any(flag in flags for flag in BF16_CPU_FLAGS):
        return "bf16"
    return "fp32"


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn "auto" into the native choice for this device (auto_precision); refuse fp16 off CUDA."""
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision 'fp16' needs a CUDA GPU (device is {device}); use 'bf16' or 'fp32'")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return auto_precision("cuda", torch.cuda.get_device_capability(device))
    return auto_precision(device.type, flags=cpu_flags() if device.type == "cpu" else frozenset())


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (CPU and every GPU) with one integer."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds the CPU and all CUDA/MPS devices
