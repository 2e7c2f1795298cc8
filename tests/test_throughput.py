"""The speed table: it times the trainer's own step and reports each switch against the same baseline."""

import dataclasses

import torch

from dcgan_utils.engine import throughput, training
from dcgan_utils.engine.run_state import build_state
from dcgan_utils.engine.throughput import images_per_second, run_steps, switch_table
from helpers import tiny_config, tiny_data


def test_run_steps_takes_the_trainers_steps_and_counts_images(monkeypatch):
    state = build_state(tiny_config())
    calls = []
    real_d_step = training.d_step
    monkeypatch.setattr(training, "d_step", lambda s, real, labels=None: calls.append(real.shape) or real_d_step(s, real, labels))
    assert run_steps(state, tiny_data(n=64), 5) == 5 * 32  # crosses the end of the data (2 batches) twice
    assert calls == [torch.Size([32, 1, 28, 28])] * 5
    assert state.opt_d.state and state.opt_g.state  # both networks were updated


def test_switch_table_measures_each_switch_alone_against_the_baseline(monkeypatch):
    seen = []

    def fake_rate(config, data, steps, warmup):
        seen.append((config.precision, config.channels_last))
        return {"images_per_s": 100.0 * (2 if config.channels_last else 1) * (3 if config.precision == "bf16" else 1),
                "precision": config.precision, "peak_gib": None}

    monkeypatch.setattr(throughput, "images_per_second", fake_rate)
    base = tiny_config(precision="fp32", channels_last=False)
    rows = switch_table(base, tiny_data(), {"cl": {"channels_last": True}, "bf16": {"precision": "bf16"}})
    assert seen == [("fp32", False), ("fp32", True), ("bf16", False)]
    assert [r["speedup"] for r in rows] == [1.0, 2.0, 3.0] and base.channels_last is False


def test_images_per_second_on_the_cpu_is_a_positive_rate_with_no_gpu_memory():
    row = images_per_second(dataclasses.replace(tiny_config(), precision="fp32"), tiny_data(n=64), steps=2, warmup=1)
    assert row["images_per_s"] > 0 and row["precision"] == "fp32" and row["peak_gib"] is None


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
