"""Where one training step's time goes: wall time per step against the time the device spends computing.

    python benchmarks/step_profile.py                      # notebook 05's step: 32x32x3, width 32, batch 128, fp32
    python benchmarks/step_profile.py --device cuda --precision bf16
    python benchmarks/step_profile.py --device cuda --fused-adam     # one Adam kernel per network: fewer launches

Times train_step (what train_gan runs per batch) with the timer of notebook 05's speed table (engine.throughput:
`Timed` builds and warms up the run, `time_round` times whole steps over the data's batches with CUDA events on a
GPU; one window, not the table's rounds), on random uint8 images of notebook 05's sizes: `--steps` warm-up steps, as
many timed, then as many under torch.profiler (which slows the Python side). Prints the wall time per step, the
device's busy time per step (on a GPU the summed durations of its kernels and copies, against the wall time without
the profiler; on a CPU the operators' own CPU time, against the wall time of the profiled steps, which the profiler
slows), the kernels and copies launched per step (CUDA) and the operators that took the most device time. A GPU busy
for a small part of the wall time waits for the CPU side (Python and PyTorch's dispatch) to issue its work: there
more arithmetic per kernel (a larger batch, wider networks) raises the images/s at little cost in wall time per
step, and faster kernels gain little. `--fused-adam` is not an engine setting: this script tries it on its own run.
CUDA graphs through torch.compile stopped this step on an H200 with PyTorch 2.11; the step captured by hand in one
graph: benchmarks/cuda_graph_step.py (benchmarks/README.md).
"""

from __future__ import annotations

import argparse

import torch
from gpu_kernels import gpu_kernels, gpu_seconds
from torch.profiler import ProfilerActivity, profile

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.device import cpu_model, device_name, get_device
from dcgan_utils.engine.run_state import GANState
from dcgan_utils.engine.throughput import Timed

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", default="auto")
parser.add_argument("--precision", default="fp32")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--width", type=int, default=32, help="g_width and d_width")
parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                    help="NHWC layout (TrainConfig's default)")
parser.add_argument("--cudnn-benchmark", action=argparse.BooleanOptionalAction, default=True,
                    help="cuDNN times its algorithms once per shape (notebook 05's setup sets it; CUDA only)")
parser.add_argument("--compile", action="store_true", help="torch.compile both models (TrainConfig.compile)")
parser.add_argument("--fused-adam", action="store_true", help="Adam(fused=True) for both networks (not an engine "
                    "setting)")
parser.add_argument("--steps", type=int, default=20, help="warm-up, timed and profiled steps, as many of each")
args = parser.parse_args()

device = get_device(args.device)
cuda = device.type == "cuda"
torch.backends.cudnn.benchmark = args.cudnn_benchmark and cuda
config = TrainConfig(image_size=32, channels=3, g_width=args.width, d_width=args.width, batch_size=args.batch_size,
                     device=str(device), precision=args.precision, channels_last=args.channels_last,
                     compile=args.compile, epochs=1)


def prepare(state: GANState) -> None:
    """What this script tries beyond the engine's settings, applied to the built run before its warm-up."""
    if args.fused_adam:
        for name, net in (("opt_g", state.G), ("opt_d", state.D)):
            old = getattr(state, name).param_groups[0]
            setattr(state, name, torch.optim.Adam(net.parameters(), lr=old["lr"], betas=old["betas"], fused=True))


n = 8 * args.batch_size  # random pixels: the speed does not depend on them; 8 batches a pass, as a data set is shuffled
data = ImageData(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.zeros(n, dtype=torch.long), ("-",))
timed = Timed(config, data, warmup=args.steps, prepare=prepare)
wall = args.batch_size / timed.time_round(args.steps)  # without the profiler, which slows the Python side
activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
with profile(activities=activities) as prof:
    profiled = args.batch_size / timed.time_round(args.steps)  # slowed by the profiler: used on a CPU only
events = prof.key_averages()
if cuda:
    kernels = gpu_kernels(prof)
    busy = gpu_seconds(kernels) / args.steps
    print(f"kernels and copies per step: {len(kernels) / args.steps:.0f}")
    within, where = wall, ""  # kernels run as fast under the profiler; only the Python side slows down
else:  # the operators' own times, measured under the profiler and slowed with it: against that window's wall time
    busy = sum(e.self_cpu_time_total for e in events) / 1e6 / args.steps
    within, where = profiled, f" under the profiler ({profiled * 1e3:.2f} ms per step)"
print(f"device {device_name(device)}; CPU {cpu_model()}; torch {torch.__version__}; {torch.get_num_threads()} threads")
print(f"batch {args.batch_size}, width {args.width}, precision {timed.state.precision}, channels_last "
      f"{args.channels_last}, cudnn.benchmark {torch.backends.cudnn.benchmark}, compile {args.compile}, "
      f"fused Adam {args.fused_adam}; random images, {args.steps} steps a window")
print(f"wall time per step {wall * 1e3:.2f} ms ({args.batch_size / wall:.0f} images/s); "
      f"device busy {busy * 1e3:.2f} ms per step = {busy / within:.0%} of the wall time{where}")
sort = "device_time_total" if cuda else "self_cpu_time_total"
print(events.table(sort_by=sort, row_limit=8, max_name_column_width=40))
