"""Checkpoints: round trip, a failed write keeps the previous file, and each part of the format on its own.

Every test here takes milliseconds and trains nothing, so `make mutmut` runs them for each mutant of checkpoint.py
(bad files in the table of all bad inputs: test_reliability.py; resuming a real run bit for bit: test_training.py).
"""

import hashlib
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from dcgan_utils.engine.checkpoint import (CheckpointError, OutputNotWritableError, check_writable, load_checkpoint,
                                           release_payload, restore, rng_states, save_checkpoint, set_rng_states, sha256,
                                           training_payload)
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
    with pytest.raises(CheckpointError) as caught:
        restore(build_state(tiny_config()), release)
    assert str(caught.value) == ("a release checkpoint (weights only) can be sampled and evaluated but not resumed; "
                                 "train a new run instead")


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


# --- the format's parts one by one (fast: mutmut runs these for every mutant of checkpoint.py) ---

def _draws():
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(1).item()


def test_a_saved_file_puts_back_pythons_numpys_and_torchs_generators(tmp_path):
    random.seed(1), np.random.seed(1), torch.manual_seed(1)
    np.random.randn()  # a cached Gaussian: numpy's state then holds has_gauss=1 and its value
    path = save_checkpoint({"rng": rng_states()}, tmp_path / "checkpoint.pt")
    expected = _draws()
    random.seed(2), np.random.seed(2), torch.manual_seed(2)
    set_rng_states(load_checkpoint(path)["rng"])
    assert _draws() == expected


def test_pythons_state_restores_from_lists_as_json_or_other_serialisers_write_it():
    states = rng_states()
    expected = _draws()
    random.seed(5)
    set_rng_states({**states, "python": json.loads(json.dumps(states["python"]))})  # tuples became lists
    assert _draws()[0] == expected[0]


def test_cuda_states_are_saved_when_cuda_is_there_and_never_touched_when_it_is_not(monkeypatch):
    saved = [torch.full((16,), 7, dtype=torch.uint8)]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: saved)
    assert rng_states()["cuda"] is saved

    def no_cuda(*args):
        pytest.fail("no CUDA here: its generators must not be read or set")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", no_cuda)
    monkeypatch.setattr(torch.cuda, "set_rng_state", no_cuda)
    assert rng_states()["cuda"] == []
    set_rng_states({**rng_states(), "cuda": saved})  # a GPU run's file resumed on a laptop


def test_progress_ema_noise_and_scalers_survive_a_resume(tmp_path):
    state = build_state(tiny_config())
    state.train_seconds, state.finished = 12.5, True
    for p in state.ema.parameters():
        p.data.fill_(0.25)
    for scaler in (state.scaler_g, state.scaler_d):  # enabled scalers (CPU fp16), so their scale is state
        scaler.__init__("cpu", init_scale=1024.0)
    payload = load_checkpoint(save_checkpoint(training_payload(state), tmp_path / "checkpoint.pt"))
    fresh = build_state(tiny_config(seed=4))
    for scaler in (fresh.scaler_g, fresh.scaler_d):
        scaler.__init__("cpu")
    restore(fresh, payload)
    assert (fresh.train_seconds, fresh.finished) == (12.5, True)
    assert all(torch.equal(a, b) for a, b in zip(state.ema.state_dict().values(), fresh.ema.state_dict().values()))
    assert torch.equal(fresh.fixed_noise, state.fixed_noise)
    assert (fresh.scaler_g.get_scale(), fresh.scaler_d.get_scale()) == (1024.0, 1024.0)


def test_a_file_from_before_progress_was_saved_starts_its_clock_at_zero_and_unfinished():
    payload = training_payload(build_state(tiny_config()))
    del payload["train_seconds"], payload["finished"]
    fresh = build_state(tiny_config())
    fresh.train_seconds, fresh.finished = 99.0, True
    restore(fresh, payload)
    assert (fresh.train_seconds, fresh.finished) == (0.0, False)


def test_runs_with_and_without_an_ema_load_each_others_files_for_sampling():
    with_ema, without = build_state(tiny_config(ema=0.9)), build_state(tiny_config(ema=0.0))
    assert without.ema is None and training_payload(without)["ema"] is None
    kept = [t.clone() for t in with_ema.ema.state_dict().values()]
    restore(with_ema, training_payload(without), resume=False)  # no saved average: the one it has stays
    assert all(torch.equal(a, b) for a, b in zip(kept, with_ema.ema.state_dict().values()))
    restore(without, training_payload(with_ema), resume=False)  # a saved average and nowhere to put it
    assert without.ema is None


def test_another_architecture_is_refused_naming_every_difference_and_both_values():
    payload = training_payload(build_state(tiny_config(g_width=16, latent_dim=8)))
    with pytest.raises(ValueError) as caught:
        restore(build_state(tiny_config()), payload)
    assert str(caught.value) == ("checkpoint does not match the config: latent_dim (checkpoint 8, config 16), "
                                 "g_width (checkpoint 16, config 8); use the checkpoint's settings")


def test_a_save_creates_missing_folders_and_removes_only_dead_writers_temporary_files(tmp_path):
    folder = tmp_path / "runs" / "mnist"
    folder.mkdir(parents=True)
    dead, live = folder / ".checkpoint.pt.tmp-999999999", folder / f".checkpoint.pt.tmp-{os.getppid()}"
    other = folder / ".samples.png.tmp-999999999"  # another file's temporary: not this save's business
    for f in (dead, live, other):
        f.write_bytes(b"partial")
    save_checkpoint({"step": 1}, folder / "checkpoint.pt")
    assert sorted(p.name for p in folder.iterdir()) == sorted(["checkpoint.pt", live.name, other.name])
    assert load_checkpoint(save_checkpoint({"step": 2}, tmp_path / "a" / "b" / "checkpoint.pt"))["step"] == 2


class _NotATensor:
    pass


def test_load_errors_name_the_file_and_what_was_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"^no checkpoint at .*nope\.pt: check the path, or train first"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(tmp_path / "text.pt")
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'text.pt'} is not a loadable checkpoint (empty, truncated")
    reason = message.split("refuses): ", 1)[1].split(". Use a checkpoint", 1)[0]
    assert reason and reason != "None" and "\n" not in reason
    for name, content, found in [("list.pt", [1, 2], "'list'"), ("dict.pt", {"step": 1}, "None"),
                                 ("other.pt", {"format": "other/1"}, "'other/1'")]:
        torch.save(content, tmp_path / name)
        with pytest.raises(CheckpointError, match=rf"{name} is a torch file but not a dcgan_utils checkpoint "
                                                  rf"\(dcgan_utils\.checkpoint/1\); found {found}$"):
            load_checkpoint(tmp_path / name)


def test_a_file_holding_other_objects_is_refused_even_with_our_format_mark(tmp_path):
    """weights_only=True: a class of someone else's could run code when unpickled, so it is not loaded."""
    torch.save({"format": "dcgan_utils.checkpoint/1", "x": _NotATensor()}, tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="weights-only loading refuses"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_sha256_reads_a_file_of_several_blocks_as_hashlib_hashes_its_bytes(tmp_path):
    data = np.random.default_rng(0).bytes((1 << 20) * 2 + 17)  # two full 1 MB blocks and a partial one
    (tmp_path / "release.pt").write_bytes(data)
    assert sha256(tmp_path / "release.pt") == hashlib.sha256(data).hexdigest()


def test_check_writable_creates_the_folder_leaves_nothing_behind_and_names_an_unwritable_one(tmp_path):
    folder = check_writable(tmp_path / "runs" / "new")
    assert folder == tmp_path / "runs" / "new" and folder.is_dir() and list(folder.iterdir()) == []
    (folder / "checkpoint.pt").write_bytes(b"a run's file")
    assert check_writable(folder) == folder and [p.name for p in folder.iterdir()] == ["checkpoint.pt"]  # a resume
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputNotWritableError, match=r"^cannot write to the output folder .*a_file/run \(.+\): "
                                                     r"choose a folder you can write to, or free space there$"):
        check_writable(tmp_path / "a_file" / "run")


def test_a_hyphen_in_the_files_name_does_not_make_a_live_writers_temporary_file_look_dead(tmp_path):
    live = tmp_path / f".best-run.pt.tmp-{os.getppid()}"
    live.write_bytes(b"partial")
    save_checkpoint({"step": 1}, tmp_path / "best-run.pt")
    assert live.exists()


def test_a_stale_file_removed_meanwhile_by_another_process_is_no_error(tmp_path, monkeypatch):
    stale = tmp_path / ".checkpoint.pt.tmp-999999999"
    stale.write_bytes(b"partial")

    def alive_after_another_cleaner(pid):
        stale.unlink()  # another process's save cleaned it up between the listing and our unlink
        return False

    monkeypatch.setattr("dcgan_utils.engine.checkpoint.alive", alive_after_another_cleaner)
    assert load_checkpoint(save_checkpoint({"step": 1}, tmp_path / "checkpoint.pt"))["step"] == 1


def test_files_load_onto_the_cpu_weights_only_and_the_fixed_noise_moves_to_the_runs_device(tmp_path, monkeypatch):
    """A GPU's file on a laptop (simulated: torch.load's arguments are recorded; the state's device is "meta")."""
    calls, real_load = [], torch.load
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: calls.append(kwargs) or real_load(*args, **kwargs))
    payload = load_checkpoint(save_checkpoint(training_payload(build_state(tiny_config())), tmp_path / "c.pt"))
    assert calls == [{"map_location": "cpu", "weights_only": True}]
    state = build_state(tiny_config())
    state.device = torch.device("meta")
    restore(state, payload, resume=False)
    assert state.fixed_noise.device.type == "meta"


def test_an_error_without_a_message_is_named_by_its_type(tmp_path, monkeypatch):
    (tmp_path / "checkpoint.pt").write_bytes(b"x")

    def fails(*args, **kwargs):
        raise EOFError

    monkeypatch.setattr(torch, "load", fails)
    with pytest.raises(CheckpointError, match=r"weights-only loading refuses\): EOFError\. Use a checkpoint"):
        load_checkpoint(tmp_path / "checkpoint.pt")


def test_an_os_error_without_a_reason_is_named_by_its_type(tmp_path, monkeypatch):
    def refuses(*args, **kwargs):
        raise PermissionError  # no errno, no strerror (as some network file systems raise it)

    monkeypatch.setattr(Path, "mkdir", refuses)
    with pytest.raises(OutputNotWritableError, match=r"output folder .*run \(PermissionError\): choose a folder"):
        check_writable(tmp_path / "run")
