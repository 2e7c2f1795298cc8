"""How to share the CPU between test processes: one training step of the course's MNIST DCGAN (width 32, batch 64,
fp32, random digits) timed alone and with a second copy beside it, at one and at two PyTorch threads per process.

    python benchmarks/threads.py              # 60 timed steps per process, after 5 warm-up steps

`make test` runs pytest in one process per CPU (pytest-xdist), and tests/conftest.py gives each process
CPUs / processes threads. This script is the measurement behind that choice: it prints ms per step for each layout and
the steps per second the whole machine gets, as a ratio to one process with a thread per CPU (the plain `pytest`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

STEP = """
import sys, torch
from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.throughput import images_per_second
torch.set_num_threads(int(sys.argv[1]))
g = torch.Generator().manual_seed(0)
digits = ImageData(torch.randint(0, 256, (1024, 1, 28, 28), dtype=torch.uint8, generator=g),
                   torch.randint(0, 10, (1024,), generator=g), tuple("0123456789"))
config = TrainConfig(image_size=28, channels=1, g_width=32, d_width=32, batch_size=64, precision="fp32", device="cpu")
rate = images_per_second(config, digits, steps=int(sys.argv[2]), warmup=5)["images_per_s"]
print(config.batch_size / rate * 1000)
"""


def layout(processes: int, threads: int, steps: int) -> list[float]:
    """ms per step of each of `processes` copies started together, each with `threads` PyTorch threads."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    running = [subprocess.Popen([sys.executable, "-c", STEP, str(threads), str(steps)], env=env, text=True,
                                stdout=subprocess.PIPE) for _ in range(processes)]
    return [float(p.communicate()[0]) for p in running]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per process")
    args = parser.parse_args()
    from dcgan_utils.engine.device import available_cpus, cpu_model

    cpus = available_cpus()
    print(f"{cpu_model()}; {cpus} CPUs for this process")
    rows = []
    for processes, threads in ((1, cpus), (1, 1), (cpus, 1), (cpus, cpus)):
        ms = layout(processes, threads, args.steps)
        rows.append((processes, threads, ms, processes * 1000 / max(ms)))
    reference = rows[0][3]
    for processes, threads, ms, rate in rows:
        print(f"{processes} process(es) x {threads} thread(s): {' / '.join(f'{m:.1f}' for m in ms)} ms per step; "
              f"machine: {rate:.1f} steps/s, {rate / reference:.2f}x one process of {cpus} threads")


if __name__ == "__main__":
    main()
