"""Target 2: images/s of our trainer against the examples/dcgan loop, same model, data and batch, interleaved, and
where each stands against this machine's limit.

    python benchmarks/throughput.py                                  # CPU: 64x64 MNIST, batch 64, 3 rounds of 40 steps
    python benchmarks/throughput.py --precision fp32                 # our trainer in fp32 (the reference always is)
    python benchmarks/throughput.py --device cuda --steps 200 --rounds 5

Both loops train the 64x64 DCGAN (width 64, 1 channel) on MNIST resized to 64x64 with batch 64. Rounds alternate
(reference, ours, reference, ours, ...) so both see the same machine state; each round starts from where the
previous round of the same loop stopped. Prints images/s per round, the medians and their ratio, then the FLOPs of
one step (counted by torch.utils.flop_counter), the GFLOP/s each loop reaches, and a measured convolution peak of
the same precision on the same machine: the fraction of that peak says how much either loop could still gain.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from reference_dcgan import ReferenceLoop
from torch.utils.flop_counter import FlopCounterMode

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import data_root, load_dataset
from dcgan_utils.engine.device import cpu_model, device_name, get_device
from dcgan_utils.engine.run_state import build_state
from dcgan_utils.engine.throughput import run_steps

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
config = TrainConfig(image_size=64, g_width=64, d_width=64, batch_size=args.batch_size,  # the reference's widths
                     device=str(device), precision=args.precision, compile=args.compile, epochs=1000)
state = build_state(config)
data = load_dataset("mnist", image_size=64, device=device)  # decoded and resized once, on the device


def ours(steps: int) -> int:
    """The trainer's own step (train_step, what train_gan runs per batch), with its per-step statistics."""
    return run_steps(state, data, steps)


def step_flops() -> int:
    """FLOPs of one training step of our loop (the reference's model is the same), counted in fp32."""
    counted = build_state(TrainConfig(image_size=64, g_width=64, d_width=64, batch_size=args.batch_size,
                                      device=str(device), precision="fp32", channels_last=False, epochs=1))
    with FlopCounterMode(display=False) as counter:
        run_steps(counted, data, 1)
    return counter.get_total_flops()


def conv_peak(precision: str) -> float:
    """GFLOP/s of a 3x3 convolution (64 -> 64 channels, 64x64, batch 64) in that precision: this machine's limit."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device, memory_format=torch.channels_last)
    x = torch.randn(args.batch_size, 64, 64, 64, device=device).contiguous(memory_format=torch.channels_last)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    context = torch.autocast(device.type, dtype=dtype) if dtype else torch.autocast(device.type, enabled=False)
    with torch.no_grad(), context:
        for _ in range(3):
            conv(x)
        sync()
        t, n = time.perf_counter(), 10
        for _ in range(n):
            conv(x)
        sync()
    return 2 * args.batch_size * 64 * 64 * 64 * 64 * 9 * n / (time.perf_counter() - t) / 1e9


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
print(f"device {device_name(device)}{'' if device.type == 'cuda' else ' on ' + cpu_model()}, "
      f"{torch.get_num_threads()} threads, torch {torch.__version__}, our precision {state.precision}, "
      f"channels_last {config.channels_last}, compile {args.compile}{peak}")
print(f"reference {ref:.1f} images/s | ours {us:.1f} images/s | ratio {us / ref:.2f}x")
flops = step_flops()
per_step = {"reference": ref / args.batch_size, "ours": us / args.batch_size}  # steps per second
peaks = {"fp32": conv_peak("fp32"), state.precision: conv_peak(state.precision)}
print(f"one step: {flops / 1e9:.1f} GFLOP; 3x3 convolution peak here: "
      + ", ".join(f"{p} {g:.0f} GFLOP/s" for p, g in peaks.items()))
for name, precision in (("reference", "fp32"), ("ours", state.precision)):
    reached = flops * per_step[name] / 1e9
    print(f"{name:9s} {reached:6.1f} GFLOP/s = {reached / peaks[precision]:.0%} of the {precision} convolution peak")
