"""Load-if-present runs: the folder follows the settings; finished runs load, partial ones resume exactly."""

import dataclasses

import pytest
import torch

from dcgan_utils import training
from dcgan_utils.runs import load_or_train, run_dir
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
