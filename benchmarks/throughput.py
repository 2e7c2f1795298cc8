"""Target 2: images/s of our trainer against the examples/dcgan loop, same model, data and batch, interleaved.

    python benchmarks/throughput.py                 # CPU: 64x64 MNIST, batch 64, 3 rounds of 40 steps each
    python benchmarks/throughput.py --device cuda --steps 200 --rounds 5

Both loops train the 64x64 DCGAN (width 64, 1 channel) on MNIST resized to 64x64 with batch 64. Rounds alternate
(reference, ours, reference, ours, ...) so both see the same machine state; each round starts from where the
previous round of the same loop stopped. Prints images/s per round, the medians and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from reference_dcgan import ReferenceLoop

from dcgan_utils.config import TrainConfig
from dcgan_utils.data import data_root, load_dataset
from dcgan_utils.device import device_name, get_device
from dcgan_utils.speed import run_steps
from dcgan_utils.state import build_state

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", default="auto")
parser.add_argument("--precision", default="auto", help="our trainer's precision (the reference is fp32)")
parser.add_argument("--steps", type=int, default=40, help="steps per round")
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--compile", action="store_true", help="torch.compile our models")
args = parser.parse_args()

device = get_device(args.device)
sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
reference = ReferenceLoop(str(data_root()), batch_size=args.batch_size, device=str(device))
config = TrainConfig(image_size=64, g_width=64, d_width=64, batch_size=args.batch_size,  # the reference's widths device=str(device), precision=args.precision,
                     compile=args.compile, epochs=1000)
state = build_state(config)
data = load_dataset("mnist", image_size=64, device=device)  # decoded and resized once, on the device


def ours(steps: int) -> int:
    """The trainer's own step path (what train_gan runs per batch), with its per-step statistics."""
    return run_steps(state, data, steps)


reference.run(3), ours(3)  # warm-up: workers started, kernels chosen (and compiled)
sync()
rates = {"reference": [], "ours": []}
for r in range(args.rounds):
    for name, loop in (("reference", reference.run), ("ours", ours)):
        sync()
        t = time.perf_counter()
        images = loop(args.steps)
        sync()
        rates[name].append(images / (time.perf_counter() - t))
        print(f"round {r + 1} {name:9s} {rates[name][-1]:8.1f} images/s", flush=True)
ref, us = statistics.median(rates["reference"]), statistics.median(rates["ours"])
peak = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB" if device.type == "cuda" else ""
print(f"device {device_name(device)}, torch {torch.__version__}, our precision {state.precision}, "
      f"channels_last {config.channels_last}, compile {args.compile}{peak}")
print(f"reference {ref:.1f} images/s | ours {us:.1f} images/s | ratio {us / ref:.2f}x")
