"""The GPU check: on a machine with a CUDA GPU, validate every CUDA path in one go and write one report.

    make gpu-prepare   # on the CPU machine first: data and the missing pure-Python packages into .gpu-kit/
    make gpu-check     # on the GPU machine: python3 benchmarks/gpu_check.py (its own python3, nothing installed)

Runs, each under its own time limit (the limits sum to 575 s, one device call; `timeout 590 make gpu-check` keeps
the call inside it): the CUDA tests (tests/test_cuda.py: fp16 with its scalers, bf16, channels_last, compile, resume
and release loading on CUDA, sampling across devices, one-GPU DDP with NCCL), `benchmarks/throughput.py --device
cuda` against the examples/dcgan loop, `benchmarks/step_profile.py --device cuda` (how much of a step the GPU
computes), `benchmarks/cuda_graph_step.py --device cuda` (the step captured in one CUDA graph), and notebooks 04 and
05 at full size into build/gpu/ with papermill (from .gpu-kit/site). Writes build/gpu-report.md with the device,
driver, versions and every number, after every step, and exits non-zero when CUDA is not in use or a step failed.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KIT = ROOT / ".gpu-kit"  # made by `make gpu-prepare`: data/ and site/ (packages the GPU machine lacks)
STEPS = [  # (name, command, time limit in seconds)
    # limits (together 575 s, under `timeout 590 make gpu-check`, which keeps the call within 10 minutes; the check
    # spent 10 s outside its steps) against an H200, two checks on 2026-12-04: tests took 93 and 79 s, throughput 26
    # and 23 s, step_profile 18 s (the second; run by hand before, 36 s once and 17 s once), notebook 04 157 and 153 s
    # (143 s once, over 150 s once), notebook 05 161 and 137 s; cuda_graph_step.py, run by hand before the second
    # check in the same device call, about 20 s (that call's 440 s less the check's 410 s of steps and about 10 s
    # around them). Rebalanced the same day, not yet run: notebook 05's section 5c adds 6,000 MNIST steps of the
    # extra-layer DCGAN (estimated 50-60 s on an H200 from collapse_search's 8-9 ms a step there), so notebook 05
    # gets 215 s, taken from notebook 04 (165 s) and the three benchmarks (30, 35 and 30 s): every margin is thin
    ("CUDA tests", [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_cuda.py"], 100),
    ("throughput vs examples/dcgan", [sys.executable, "benchmarks/throughput.py", "--device", "cuda", "--steps", "200",
                                      "--rounds", "3"], 30),
    ("where a step's time goes (notebook 05's sizes, fp32)", [sys.executable, "benchmarks/step_profile.py",
                                                              "--device", "cuda", "--steps", "50"], 35),
    ("the same step in one CUDA graph", [sys.executable, "benchmarks/cuda_graph_step.py", "--device", "cuda"], 30),
    *[(f"notebook {name[:2]} (full size)", [sys.executable, "-m", "papermill", "-k", "python3", "--cwd", "notebooks",
                                             f"notebooks/{name}.ipynb", f"build/gpu/{name}.ipynb"], limit)
      for name, limit in (("04_train_mnist", 165), ("05_train_cifar10", 215))],
]


def environment() -> dict[str, str]:
    """The checkout and the kit's packages on the path, the kit's data as the data root, RETRAIN for the notebooks."""
    env = dict(os.environ)
    paths = [str(ROOT), str(KIT / "site"), str(ROOT / "tests")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*paths, env.get("PYTHONPATH")]))
    env.setdefault("DCGAN_DATA_DIR", str(KIT / "data"))
    env["DCGAN_RETRAIN"] = "1"  # notebooks 04 and 05 train on the GPU instead of loading the CPU releases
    return env


def header() -> list[str]:
    """Device, driver and versions, or an exit when CUDA is not there."""
    import torch

    if not torch.cuda.is_available():
        sys.exit("gpu_check: PyTorch sees no CUDA GPU here: this check validates the CUDA paths, run it on a GPU machine")
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True)
    return [f"- GPU: {torch.cuda.get_device_name()} (compute capability {torch.cuda.get_device_capability()})",
            f"- nvidia-smi: {smi.stdout.strip() or smi.stderr.strip()}",
            f"- PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
            f"Python {platform.python_version()}"]


def unpack() -> None:
    """Unpack what `make gpu-prepare` packed (the packages, the CIFAR-10 subset), once."""
    import tarfile

    for archive, target in ((KIT / "site.tar.xz", KIT / "site"), (KIT / "cifar10-subset.tar", KIT / "data")):
        marker = target / f".unpacked-{archive.name}"
        if archive.is_file() and not marker.exists():
            with tarfile.open(archive) as tar:
                tar.extractall(target, filter="data")
            marker.touch()


def main() -> None:
    lines = ["# GPU check report", "", *header(), ""]
    unpack()
    failed = []
    env = environment()
    (ROOT / "build" / "gpu").mkdir(parents=True, exist_ok=True)  # papermill writes the notebooks there, not creating it
    report = ROOT / "build" / "gpu-report.md"
    for name, command, limit in STEPS:
        start = time.perf_counter()
        try:
            done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
            status, output = ("ok" if done.returncode == 0 else f"exit {done.returncode}"), done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            status, output = f"stopped at its {limit} s limit", (err.stdout or b"").decode(errors="replace")
        if status != "ok":
            failed.append(name)
        lines += [f"## {name}: {status} ({time.perf_counter() - start:.0f} s)", "", "```",
                  *output.strip().splitlines()[-40:], "```", ""]
        print(f"{name}: {status}", flush=True)
        report.write_text("\n".join(lines))  # after every step: a check stopped from outside keeps what it found
    print(f"wrote {report}")
    if failed:
        sys.exit(f"gpu_check: failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
