import random

import numpy as np
import pytest
import torch

from dcgan_utils.engine import device as device_module
from dcgan_utils.engine.device import get_device, seed_everything


@pytest.mark.parametrize(
    "cuda, mps, expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu"), (True, False, "cuda")]
)
def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(device_module, "_mps_available", lambda: mps)
    assert get_device("auto").type == expected


def test_cpu_is_always_available():
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")


def test_missing_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="no CUDA GPU.*'cpu'"):
        get_device("cuda")


@pytest.mark.parametrize("name", ["tpu", "gpu0", ""])
def test_unknown_device_is_a_clear_error(name):
    with pytest.raises(ValueError, match="device"):
        get_device(name)


def _draws():
    return random.random(), float(np.random.rand()), torch.randn(3).tolist()


def test_seed_everything_repeats_python_numpy_and_torch():
    seed_everything(123)
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    other = _draws()
    assert all(a != b for a, b in zip(first[:2], other[:2])) and first[2] != other[2]


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match="seed"):
        seed_everything(seed)


def test_ran_on_names_the_cpu_model_its_bf16_flags_cpus_threads_and_torch(monkeypatch):
    import os
    import subprocess
    import types

    lscpu = "Architecture:  x86_64\nModel name:    Made-up CPU 9000\nThread(s) per core:  2\n"
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout=lscpu))
    monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset({"sse2", "avx2", "amx_bf16"}))
    monkeypatch.setattr(os, "cpu_count", lambda: 64)  # the host's
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3, 4, 5}, raising=False)  # this container's
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Made-up GPU")
    tail = ("Made-up CPU 9000 (flags: amx_bf16, avx2), 6 logical CPUs available, PyTorch set to 3 threads, "
            f"torch {torch.__version__}")
    assert device_module.ran_on("cpu") == f"cpu: {tail}"
    assert device_module.ran_on(torch.device("cuda", 1)) == f"cuda:1 (Made-up GPU): {tail}"
    monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset())
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: types.SimpleNamespace(stdout="no model line\n"))
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # macOS and Windows have none
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert device_module.ran_on() == ("cpu: unknown CPU (flags: none of avx2/avx512f/avx512_bf16/amx_bf16), 64 logical "
                                      f"CPUs available, PyTorch set to 1 thread, torch {torch.__version__}")
