"""Where one training step's time goes: wall time per step against the time the device spends computing.

    python benchmarks/step_profile.py                      # notebook 05's step: 32x32x3, width 32, batch 128, fp32
    python benchmarks/step_profile.py --device cuda --precision bf16

Runs train_step (what train_gan runs per batch) on random images of notebook 05's sizes: `--steps` warm-up
steps, as many timed by the wall clock alone, then as many under torch.profiler (which slows the Python side).
Prints the wall time per step, the device's busy time per step (on a GPU the summed durations of its kernels and
copies, against the wall time without the profiler; on a CPU the operators' own CPU time, against the wall time
of the profiled steps, which the profiler slows), the kernels and copies launched per step (CUDA) and the operators
that took the most device time. A GPU busy for a small part of the wall time waits for the CPU side (Python and
PyTorch's dispatch) to issue its work: there more arithmetic per kernel (a larger batch, wider networks) raises the
images/s at little cost in wall time per step, and faster kernels gain little. Unlike notebook 05's speed table it
takes one fixed batch, leaves cudnn.benchmark off and defaults to channels_last, so its times are not that table's.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.device import cpu_model, device_name, get_device
from dcgan_utils.engine.run_state import build_state
from dcgan_utils.engine.training import train_step

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", default="auto")
parser.add_argument("--precision", default="fp32")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--width", type=int, default=32, help="g_width and d_width")
parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="NHWC layout (TrainConfig's default; the numbers in the READMEs were measured with it)")
parser.add_argument("--steps", type=int, default=20, help="warm-up, timed and profiled steps, as many of each")
args = parser.parse_args()

device = get_device(args.device)
cuda = device.type == "cuda"
sync = torch.cuda.synchronize if cuda else (lambda: None)
config = TrainConfig(image_size=32, channels=3, g_width=args.width, d_width=args.width, batch_size=args.batch_size,
                     device=str(device), precision=args.precision, channels_last=args.channels_last, epochs=1)
state = build_state(config)
real = torch.rand(args.batch_size, 3, 32, 32, device=device) * 2 - 1  # the speed does not depend on the pixels
labels = torch.zeros(args.batch_size, dtype=torch.long, device=device)

for _ in range(args.steps):
    train_step(state, real, labels)
sync()
start = time.perf_counter()
for _ in range(args.steps):
    train_step(state, real, labels)
sync()
wall = (time.perf_counter() - start) / args.steps  # without the profiler, which slows the Python side
activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
with profile(activities=activities) as prof:
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step(state, real, labels)
    sync()
    profiled = (time.perf_counter() - start) / args.steps
events = prof.key_averages()
if cuda:
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA
               and not getattr(e, "is_user_annotation", False)]  # an optimiser's annotation spans its kernels
    busy = sum(e.time_range.elapsed_us() for e in kernels) / 1e6 / args.steps
    print(f"kernels and copies per step: {len(kernels) / args.steps:.0f}")
    within, where = wall, ""  # kernels run as fast under the profiler; only the Python side slows down
else:  # the operators' own times, measured under the profiler and slowed with it: against that window's wall time
    busy = sum(e.self_cpu_time_total for e in events) / 1e6 / args.steps
    within, where = profiled, f" under the profiler ({profiled * 1e3:.2f} ms per step)"
print(f"device {device_name(device)}; CPU {cpu_model()}; torch {torch.__version__}; {torch.get_num_threads()} threads")
print(f"batch {args.batch_size}, width {args.width}, precision {args.precision}, channels_last {args.channels_last}, "
      f"cudnn.benchmark {torch.backends.cudnn.benchmark}; one fixed batch of random images")
print(f"wall time per step {wall * 1e3:.2f} ms ({args.batch_size / wall:.0f} images/s); "
      f"device busy {busy * 1e3:.2f} ms per step = {busy / within:.0%} of the wall time{where}")
sort = "device_time_total" if cuda else "self_cpu_time_total"
print(events.table(sort_by=sort, row_limit=8, max_name_column_width=40))
