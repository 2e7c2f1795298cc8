"""Load-if-present runs: the folder follows the settings; finished runs load, partial ones resume exactly."""

import dataclasses
import subprocess
import sys

import pytest
import torch

from dcgan_utils.engine import training
from dcgan_utils.engine.lock import RunLockedError
from dcgan_utils.engine.runs import load_or_train, run_dir
from helpers import tiny_config, tiny_data


def test_the_folder_follows_what_is_learned_not_where_it_runs(tmp_path):
    base = tiny_config()
    assert run_dir(tmp_path, base) == run_dir(tmp_path, tiny_config())
    assert run_dir(tmp_path, base) == run_dir(tmp_path, dataclasses.replace(base, device="cuda", compile=True))
    changed = {run_dir(tmp_path, dataclasses.replace(base, **{k: v}))
               for k, v in (("lr", 1e-3), ("seed", 4), ("num_classes", 10), ("epochs", 3), ("loss", "hinge"))}
    assert len(changed) == 5 and run_dir(tmp_path, base) not in changed
    assert run_dir(tmp_path, base).name.startswith("mnist-")


def test_a_finished_run_is_loaded_without_a_single_step(tmp_path, monkeypatch):
    config, data = tiny_config(epochs=1), tiny_data()
    first, how = load_or_train(config, data, tmp_path, progress=False)
    assert how == "trained" and first.step == 8
    monkeypatch.setattr(training, "d_step", lambda *a: pytest.fail("a finished run was trained again"))
    again, how = load_or_train(config, data, tmp_path, progress=False)
    assert how == "loaded" and again.step == 8 and again.history == first.history
    assert all(torch.equal(a, b) for a, b in zip(first.G.state_dict().values(), again.G.state_dict().values()))


def test_a_cut_short_run_is_resumed_to_the_same_result_as_an_unbroken_one(tmp_path):
    config, data = tiny_config(epochs=2), tiny_data()
    unbroken = training.train_gan(config, data, progress=False)
    training.train_gan(dataclasses.replace(config, max_steps=5), data, run_dir(tmp_path, config), progress=False)
    resumed, how = load_or_train(config, data, tmp_path, progress=False)
    assert how == "resumed" and resumed.step == unbroken.step == 16
    assert resumed.history == unbroken.history


def test_retrain_starts_again_and_other_configurations_are_untouched(tmp_path):
    data = tiny_data()
    a, b = tiny_config(epochs=1), tiny_config(epochs=1, seed=9)
    load_or_train(a, data, tmp_path, progress=False)
    load_or_train(b, data, tmp_path, progress=False)
    before = (run_dir(tmp_path, b) / "checkpoint.pt").read_bytes()
    _, how = load_or_train(a, data, tmp_path, retrain=True, progress=False)
    assert how == "trained" and (run_dir(tmp_path, b) / "checkpoint.pt").read_bytes() == before


def test_a_finished_run_loads_from_a_read_only_folder_without_data_or_writes(tmp_path, monkeypatch):
    config = tiny_config(epochs=1)
    trained, _ = load_or_train(config, tiny_data(), tmp_path, progress=False)
    folder = run_dir(tmp_path, config)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    folder.chmod(0o555)
    try:
        monkeypatch.setattr(training, "load_dataset", lambda *a, **k: pytest.fail("data loaded to load a finished run"))
        state, how = load_or_train(config, None, tmp_path, progress=False)
    finally:
        folder.chmod(0o755)
    assert how == "loaded" and state.step == trained.step and state.history == trained.history
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_a_folder_that_holds_a_run_is_refused_unless_resume_or_overwrite(tmp_path):
    training.train_gan(tiny_config(max_steps=6), tiny_data(), tmp_path, progress=False)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(training.RunExistsError, match="already holds a run.*resume=True.*overwrite=True"):
        training.train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, progress=False)
    assert (tmp_path / "checkpoint.pt").read_bytes() == before
    replaced = training.train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, overwrite=True, progress=False)
    assert replaced.step == 2 and not (tmp_path / ".lock").exists()


def test_a_second_writer_is_refused_with_the_first_ones_process_id_and_a_stale_lock_is_taken_over(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".lock").write_text(str(holder.pid))
        with pytest.raises(RunLockedError, match=rf"being written by process {holder.pid}"):
            training.train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, progress=False)
        assert not (tmp_path / "checkpoint.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (as after kill -9): its lock no longer blocks the run
    state = training.train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, progress=False)
    assert state.step == 2 and not (tmp_path / ".lock").exists()


def test_loading_a_finished_run_or_a_release_draws_no_progress_bar_and_calls_no_callback(tmp_path, monkeypatch):
    # a notebook that loads a run must not leave a progress bar stuck at 0 above the finished figure
    from dcgan_utils.engine.runs import export_release

    config = tiny_config(epochs=1)
    load_or_train(config, tiny_data(), tmp_path / "runs", progress=False)
    export_release(run_dir(tmp_path / "runs", config) / "checkpoint.pt", tmp_path / "releases")
    monkeypatch.setattr(training, "tqdm", lambda *a, **k: pytest.fail("a progress bar was created"))
    called = []
    _, how = load_or_train(config, None, tmp_path / "runs", callback=called.append, progress=True)
    _, how_release = load_or_train(config, None, tmp_path / "empty", callback=called.append, progress=True,
                                   pretrained=tmp_path / "releases")
    assert (how, how_release, called) == ("loaded", "pretrained", [])
