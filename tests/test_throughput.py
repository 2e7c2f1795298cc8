"""The speed table: it times the trainer's own step and reports each switch against the same baseline."""

import dataclasses
import re
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from dcgan_utils.engine import throughput, training
from dcgan_utils.engine.run_state import build_state, compile_models
from dcgan_utils.engine.throughput import Timed, images_per_second, run_steps, switch_table
from helpers import tiny_config, tiny_data


def test_run_steps_takes_the_trainers_steps_and_counts_images(monkeypatch):
    state = build_state(tiny_config())
    calls = []
    real_d_step = training.d_step
    monkeypatch.setattr(training, "d_step", lambda s, real, labels=None: calls.append(real.shape) or real_d_step(s, real, labels))
    assert run_steps(state, tiny_data(n=64), 5) == 5 * 32  # crosses the end of the data (2 batches) twice
    assert calls == [torch.Size([32, 1, 28, 28])] * 5
    assert state.opt_d.state and state.opt_g.state  # both networks were updated


def test_timed_applies_prepare_to_the_built_run_before_its_warm_up():
    """step_profile's --fused-adam replaces the optimisers through prepare: the warm-up must already step the new
    ones."""
    config = tiny_config(ema=0.0)
    built = build_state(config)  # build_state seeds: the same weights Timed's run starts from
    new = {}

    def prepare(state):  # a new optimiser for G, at learning rate 0
        new["opt_g"] = state.opt_g = torch.optim.Adam(state.G.parameters(), lr=0.0)

    timed = Timed(config, tiny_data(n=64), warmup=2, prepare=prepare)

    def moved(net, start):
        return [k for k, v in net.state_dict().items() if v.is_floating_point() and "running" not in k
                and not torch.equal(v, start.state_dict()[k])]

    assert timed.state.opt_g is new["opt_g"] and new["opt_g"].state  # the new optimiser is the one that stepped
    assert moved(timed.state.G, built.G) == []  # so G's warm-up steps moved nothing
    assert moved(timed.state.D, built.D)  # while D's did: the warm-up ran


def test_switch_table_times_each_switch_alone_in_interleaved_rounds_and_takes_medians(monkeypatch):
    order = []

    class FakeTimed:  # a rate per configuration, and a noisy second round for every row
        def __init__(self, config, data, warmup):
            self.config, self.rates = config, []

        def time_round(self, steps):
            order.append((self.config.precision, self.config.channels_last))
            rate = 100.0 * (2 if self.config.channels_last else 1) * (3 if self.config.precision == "bf16" else 1)
            self.rates.append(rate / 10 if len(self.rates) == 1 else rate)  # round 2 hit by another job

        def result(self):
            return {"images_per_s": statistics.median(self.rates), "precision": self.config.precision, "peak_gib": None}

    monkeypatch.setattr(throughput, "Timed", FakeTimed)
    base = tiny_config(precision="fp32", channels_last=False)
    rows = switch_table(base, tiny_data(), {"cl": {"channels_last": True}, "bf16": {"precision": "bf16"}}, rounds=3)
    assert order == [("fp32", False), ("fp32", True), ("bf16", False)] * 3  # baseline, switch, switch, again
    assert [r["speedup"] for r in rows] == [1.0, 2.0, 3.0] and base.channels_last is False


def test_images_per_second_on_the_cpu_is_images_over_the_timed_seconds(monkeypatch):
    """A controlled clock: the timed steps take exactly 2.5 s, so 2 steps of 32 images are 25.6 images/s."""
    readings = iter([100.0, 102.5])
    monkeypatch.setattr(throughput.time, "perf_counter", lambda: next(readings))
    row = images_per_second(dataclasses.replace(tiny_config(), precision="fp32"), tiny_data(n=64), steps=2, warmup=1)
    assert row == {"images_per_s": 64 / 2.5, "precision": "fp32", "peak_gib": None}
def test_compiled_models_compute_the_same_steps_as_eager_ones():
    """torch.compile (inductor; a C++ compiler on the CPU) must change the speed, not what the step computes."""
    data = tiny_data(n=64)
    runs = {}
    for compiled in (False, True):
        state = build_state(tiny_config(precision="fp32", channels_last=False, ema=0.0, compile=compiled))
        run_steps(state, data, 3)
        runs[compiled] = state
    assert runs[True].g_run is not runs[True].G  # the steps ran through the compiled module
    fresh = build_state(tiny_config(precision="fp32", channels_last=False, ema=0.0))
    moved = max((a - b).abs().max().item() for a, b in zip(fresh.G.parameters(), runs[True].G.parameters()))
    assert moved > 3e-4  # three Adam steps of 2e-4: the comparison below is not between untouched weights
    for eager, compiled in zip(runs[False].G.parameters(), runs[True].G.parameters()):
        assert torch.allclose(eager, compiled, atol=1e-4)
    for eager, compiled in zip(runs[False].D.parameters(), runs[True].D.parameters()):
        assert torch.allclose(eager, compiled, atol=1e-4)


def test_compile_on_cuda_turns_off_inductors_own_layout_choice(monkeypatch):
    """On CUDA, inductor's layout optimisation, with G's first weight in NHWC, stopped G's backward (PyTorch 2.11,
    H200): it is off there, only."""
    seen = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: seen.append(kw.get("options")) or module)
    for device in ("cuda", "cpu"):
        compile_models(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1), torch.device(device))
    assert seen == [{"layout_optimization": False}] * 2 + [None] * 2
    assert torch._inductor.config.layout_optimization in (True, False)  # the option names a real inductor setting


def test_compile_keeps_the_first_layer_of_g_in_standard_layout():
    """G's first layer sees a 1x1 input: under compile its weight stays NCHW, every other one follows channels_last."""
    state = build_state(tiny_config(compile=True, channels_last=True))
    weights = [m.weight for m in state.G.net if isinstance(m, torch.nn.ConvTranspose2d)]
    assert weights[0].is_contiguous() and not weights[0].is_contiguous(memory_format=torch.channels_last)
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in weights[1:])
    assert not weights[1].is_contiguous()
    eager = build_state(tiny_config(compile=False, channels_last=True))
    assert eager.G.net[0].weight.is_contiguous(memory_format=torch.channels_last)  # without compile, unchanged


def test_step_profile_prints_the_wall_time_and_the_devices_busy_time_per_step():
    """benchmarks/step_profile.py, whose figures README and notebook 05 quote, runs on a CPU at tiny sizes (with its
    fused-Adam switch, which swaps the optimisers through Timed's prepare)."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "step_profile.py"), "--device", "cpu",
                           "--batch-size", "8", "--width", "4", "--steps", "2", "--fused-adam"],
                          capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"wall time per step ([\d.]+) ms \((\d+) images/s\); device busy ([\d.]+) ms per step = (\d+)% "
                      r"of the wall time under the profiler \(([\d.]+) ms per step\)", done.stdout)
    assert found and "fused Adam True" in done.stdout, done.stdout
    wall, rate, busy, share, profiled = float(found[1]), int(found[2]), float(found[3]), int(found[4]), float(found[5])
    assert 0 < busy <= 1.05 * profiled, done.stdout  # the operators' own times fit in the steps they ran in
    assert abs(share - 100 * busy / profiled) <= 1 and abs(rate - 8e3 / wall) <= 0.01 * rate + 1


def test_cuda_graph_step_is_the_engines_step_on_fixed_inputs():
    """benchmarks/cuda_graph_step.py times a step written out on fixed tensors (to capture it in a CUDA graph); on
    the CPU its eager run must end where the engine's train_step does, from the same seed, noise and batches, or its
    figures time some other step."""
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "cuda_graph_step.py"), "--device", "cpu",
                           "--batch-size", "8", "--steps", "2"], capture_output=True, text=True, timeout=300, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r"vs engine train_step after 5 steps: max \|diff\| (\S+), relative (\S+)\n", done.stdout)
    assert found, done.stdout
    assert float(found[1]) <= 1e-6 and float(found[2]) <= 1e-5, done.stdout
    assert "static step, eager:" in done.stdout, done.stdout
