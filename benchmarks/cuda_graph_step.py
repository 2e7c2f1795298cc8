"""Notebook 05's training step captured whole in one CUDA graph, against the engine's eager step.

    python benchmarks/cuda_graph_step.py --device cuda                                  # batch 128, 50 steps a window
    python benchmarks/cuda_graph_step.py --device cuda --batch-size 1024 --steps 30     # eight times the work

An experiment, not an engine setting: the step is the engine's (one D step on real and detached fakes, one G step
through the updated D, the engine's losses and Adam; fp32, channels_last, batch 128, width 32, 32x32x3), written
on fixed input tensors (the real batch and the noise are copied into them before each step) with Adam's
`capturable=True`, so that `torch.cuda.graph` can record it once and replay it with one launch. The script checks
(1) that this step, run eagerly, ends where the engine's `train_step` does from the same seed, noise and batches
(on a CPU to the last bit; on a GPU within its run-to-run differences); (2) on CUDA, how far its graph replay ends
from its eager run, set against two eager twins (a second plain run; one with `capturable` Adam, the replay's own
optimiser); then (3) times the engine's step, this step eager and (CUDA) its replay, in that order, each as the
median of three synchronised `perf_counter` windows, with the GPU's busy time in a separate, profiled pass of the
replay.
Figures: benchmarks/README.md, "A whole step in one CUDA graph".
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from gpu_kernels import gpu_kernels, gpu_seconds

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.device import cpu_model, device_name, get_device
from dcgan_utils.engine.losses import discriminator_loss, generator_loss
from dcgan_utils.engine.run_state import build_state, draw_noise
from dcgan_utils.engine.training import train_step

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--device", default="auto")
parser.add_argument("--batch-size", type=int, default=128)
parser.add_argument("--steps", type=int, default=50)
args = parser.parse_args()

device = get_device(args.device)
cuda = device.type == "cuda"
torch.backends.cudnn.benchmark = cuda
B = args.batch_size
config = TrainConfig(image_size=32, channels=3, g_width=32, d_width=32, batch_size=B, device=str(device),
                     precision="fp32", channels_last=True, epochs=1)
n = 8 * B
data = ImageData(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8), torch.zeros(n, dtype=torch.long),
                 ("-",)).to(device)
print(f"device {device_name(device)}; CPU {cpu_model()}; torch {torch.__version__}; batch {B}, fp32, channels_last")


def sync():
    """Wait for the GPU's queue (the steps are asynchronous there)."""
    if cuda:
        torch.cuda.synchronize()


def batches(count, seed=0):
    """count real batches (channels_last, on the device) from shuffled passes."""
    out, gen = [], torch.Generator().manual_seed(seed)
    while len(out) < count:
        for real, _ in data.batches(B, gen):
            out.append(real.contiguous(memory_format=torch.channels_last))
            if len(out) == count:
                break
    return out


class StaticStep:
    """The engine's step on fixed input tensors, eager or replayed from a CUDA graph."""

    def __init__(self, state, capturable):
        self.s = state
        cfg = state.config
        for name, net, lr in (("opt_g", state.G, cfg.lr), ("opt_d", state.D, cfg.d_lr)):
            setattr(state, name, torch.optim.Adam(net.parameters(), lr=lr, betas=(cfg.beta1, cfg.beta2),
                                                  capturable=capturable))
        self.real = torch.zeros(B, 3, 32, 32, device=device).contiguous(memory_format=torch.channels_last)
        self.z = torch.zeros(B, cfg.latent_dim, device=device)
        self.graph = None

    def body(self):
        """train_step's work for one batch (d_steps 1, g_steps 1, no penalties, EMA or statistics): D's step, G's."""
        s, cfg = self.s, self.s.config
        fake = s.G(self.z)
        real_logits, fake_logits = s.D(self.real), s.D(fake.detach())
        d_loss = discriminator_loss(real_logits.float(), fake_logits.float(), cfg.loss, cfg.real_label)
        s.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        s.opt_d.step()
        g_loss = generator_loss(s.D(fake).float(), cfg.loss)
        s.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        s.opt_g.step()
        return d_loss.detach(), g_loss.detach()

    def capture(self, warm_inputs):
        """Record one step into a CUDA graph, after warm-up steps on a side stream (as torch.cuda.graph asks), so the
        optimisers' states and the gradients exist; inside the capture the gradients set to None are reallocated
        from the graph's memory, and every replay writes the same tensors."""
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for real, z in warm_inputs:
                self.real.copy_(real)
                self.z.copy_(z)
                self.body()
        torch.cuda.current_stream().wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.losses = self.body()

    def __call__(self, real, z):
        """One step on this batch and noise: copied into the fixed inputs, then run eagerly or replayed."""
        self.real.copy_(real)
        self.z.copy_(z)
        if self.graph is None:
            return self.body()
        self.graph.replay()
        return self.losses


def flat(state):
    """All of G's and D's parameters in one vector (a copy)."""
    return torch.cat([p.detach().flatten() for p in [*state.G.parameters(), *state.D.parameters()]]).clone()


def gap(a, b, start):
    """How far apart two runs from the same start ended: max |difference|, and the difference of their moves
    relative to the first run's move (L2)."""
    pa, pb = flat(a), flat(b)
    return f"max |diff| {(pa - pb).abs().max().item():.2e}, relative {(pa - pb).norm() / (pa - start).norm():.2e}"


# 1. this step equals the engine's train_step (same seed: same weights, same noise generator, same batches)
check = 5
engine, mine = build_state(config), build_state(config)
start = flat(engine)
static = StaticStep(mine, capturable=False)
for real in batches(check):
    train_step(engine, real)
    static(real, draw_noise(mine.noise, B, config.latent_dim, device))
print(f"1. static step eager vs engine train_step after {check} steps: {gap(engine, mine, start)}")

if cuda:
    # 2. how far the graph replay ends from the eager run of the same step, from the same state
    eager_state = build_state(config)
    graph_state, twin_state, cap_state = (copy.deepcopy(eager_state) for _ in range(3))
    start = flat(eager_state)
    eager, graphed = StaticStep(eager_state, capturable=False), StaticStep(graph_state, capturable=True)
    twin, cap = StaticStep(twin_state, capturable=False), StaticStep(cap_state, capturable=True)
    inputs = [(r, draw_noise(eager_state.noise, B, config.latent_dim, device)) for r in batches(3 + check, seed=1)]
    for real, z in inputs[:3]:
        eager(real, z)
        twin(real, z)
        cap(real, z)
    graphed.capture(inputs[:3])
    for real, z in inputs[3:]:
        e = eager(real, z)
        twin(real, z)
        cap(real, z)
        g = graphed(real, z)
    sync()
    print(f"2. after {3 + check} steps from one state (3 warm-up, {check} more; the graph's warm-up ran on a side "
          f"stream):")
    print(f"   eager vs eager twin (the GPU's run-to-run difference): {gap(eager_state, twin_state, start)}")
    print(f"   eager vs eager with capturable Adam: {gap(eager_state, cap_state, start)}")
    print(f"   eager vs CUDA graph replay: {gap(eager_state, graph_state, start)}")
    print(f"   eager with capturable Adam vs CUDA graph replay: {gap(cap_state, graph_state, start)}")
    print(f"   last losses eager {[round(x.item(), 4) for x in e]} graph {[round(x.item(), 4) for x in g]}")


def timed(label, fn, inputs, steps):
    """Milliseconds a step of fn(real, z) over the inputs: a warm-up pass, then the median of three windows."""
    for real, z in inputs[:steps]:  # warm-up
        fn(real, z)
    sync()
    windows = []
    for _ in range(3):
        t = time.perf_counter()
        for real, z in inputs[:steps]:
            fn(real, z)
        sync()
        windows.append((time.perf_counter() - t) / steps)
    ms = sorted(windows)[1] * 1e3
    print(f"   {label}: {ms:.2f} ms a step (median of 3 windows of {steps}: "
          f"{', '.join(f'{w * 1e3:.2f}' for w in windows)}), {B / ms * 1e3:.0f} images/s")
    return ms


# 3. times, perf_counter around synchronised windows of steps (the same clock for all three)
steps = args.steps
inputs = [(r, torch.randn(B, config.latent_dim, device=device)) for r in batches(steps, seed=2)]
print("3. times:")
s0 = build_state(config)
t_engine = timed("engine train_step (noise drawn on the CPU)", lambda r, z: train_step(s0, r), inputs, steps)
t_eager = timed("static step, eager", StaticStep(build_state(config), capturable=False), inputs, steps)
if cuda:
    g = StaticStep(build_state(config), capturable=True)
    g.capture(inputs[:3])
    t_graph = timed("static step, one CUDA graph replay", g, inputs, steps)
    print(f"   graph vs engine: {t_engine / t_graph:.2f}x; graph vs eager static: {t_eager / t_graph:.2f}x")
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) as prof:
        for real, z in inputs[:steps]:
            g(real, z)
        sync()
    busy = gpu_seconds(gpu_kernels(prof)) * 1e3 / steps
    print(f"   GPU busy under the graph: {busy:.2f} ms a step")
