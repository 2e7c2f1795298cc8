"""Checkpoints: round trip, and a failed write keeps the previous file (bad files: test_reliability.py)."""

import os

import pytest
import torch

from dcgan_utils.engine.checkpoint import (CheckpointError, load_checkpoint, release_payload, restore, rng_states,
                                           save_checkpoint, set_rng_states, training_payload)
from dcgan_utils.engine.run_state import build_state
from helpers import tiny_config


def test_round_trip_and_no_temporary_file_left(tmp_path):
    path = save_checkpoint({"step": 3, "w": torch.arange(4)}, tmp_path / "run" / "checkpoint.pt")
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and torch.equal(loaded["w"], torch.arange(4))
    assert os.listdir(tmp_path / "run") == ["checkpoint.pt"]


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint({"step": 1}, tmp_path / "checkpoint.pt")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="No space"):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


def test_rng_states_of_more_gpus_than_this_machine_has_restore_the_first_ones(monkeypatch):
    """A checkpoint from an 8-GPU node resumed on one GPU (simulated: torch.cuda's calls are recorded)."""
    restored = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, index: restored.append((index, state)))
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", lambda states: pytest.fail("one state per saved GPU"))
    states = {**rng_states(), "cuda": [torch.full((16,), i, dtype=torch.uint8) for i in range(8)]}
    set_rng_states(states)
    assert [(i, s[0].item()) for i, s in restored] == [(0, 0)]


def test_a_checkpoint_loads_on_the_cpu_and_its_noise_generator_is_a_cpu_one(tmp_path):
    """Every tensor of a payload comes back on the CPU, and the run's noise state is a CPU generator's, so
    torch.Generator.set_state and torch.set_rng_state accept it whatever device resumes the run."""
    state = build_state(tiny_config())
    payload = load_checkpoint(save_checkpoint(training_payload(state), tmp_path / "checkpoint.pt"))
    tensors = [v for v in payload.values() if isinstance(v, torch.Tensor)]
    assert tensors and all(t.device.type == "cpu" for t in tensors)
    assert state.noise.device.type == "cpu" and payload["noise"].numel() == torch.Generator().get_state().numel()


def test_sampling_needs_no_optimiser_or_rng_state_and_resuming_a_release_is_refused(tmp_path):
    state = build_state(tiny_config())
    release = release_payload(training_payload(state))
    fresh = build_state(tiny_config(seed=3))
    restore(fresh, release, resume=False)
    assert all(torch.equal(a, b) for a, b in zip(state.G.state_dict().values(), fresh.G.state_dict().values()))
    with pytest.raises(CheckpointError, match="release checkpoint .* not resumed"):
        restore(build_state(tiny_config()), release)


def test_resuming_puts_back_the_processs_random_states_and_sampling_leaves_them(tmp_path):
    """A resumed run draws from torch's global generator what the run would have drawn next, had it not stopped."""
    state = build_state(tiny_config())
    torch.manual_seed(7)
    payload = training_payload(state)
    would_draw = torch.rand(5)
    torch.manual_seed(8)  # another session, another state
    restore(build_state(tiny_config()), payload, resume=False)
    assert not torch.equal(torch.rand(5), would_draw), "sampling must not touch the process's random state"
    restore(build_state(tiny_config()), payload, resume=True)
    assert torch.equal(torch.rand(5), would_draw)
