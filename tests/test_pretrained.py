"""Pretrained releases: exported from real runs, found only for the same settings, verified by sha256, and the
ones the course ships are intact and good."""

import dataclasses
import shutil

import pytest
import torch

from dcgan_utils.engine import training
from dcgan_utils.engine.checkpoint import CheckpointError, is_release, keeps_g_state, load_checkpoint, sha256
from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.run_state import generate
from dcgan_utils.engine.runs import (PRETRAINED, PretrainedError, export_release, find_pretrained, load_or_train,
                                     load_run, read_registry, run_dir)
from dcgan_utils.evaluation.metrics import class_accuracy, class_coverage
from helpers import tiny_config, tiny_data


@pytest.fixture
def released(tmp_path):
    config, data = tiny_config(epochs=1), tiny_data()
    state, _ = load_or_train(config, data, tmp_path / "runs", progress=False, pretrained=None)
    entry = export_release(run_dir(tmp_path / "runs", config) / "checkpoint.pt", tmp_path / "release", note="test")
    return config, data, state, entry, tmp_path / "release"


def test_a_release_keeps_weights_curves_and_grids_in_less_space(released):
    config, _, state, entry, folder = released
    path = folder / entry["file"]
    assert entry["sha256"] == sha256(path) and entry["step"] == state.step == 8
    assert path.stat().st_size < 0.7 * (run_dir(folder.parent / "runs", config) / "checkpoint.pt").stat().st_size
    loaded = load_run(config, find_pretrained(config, folder))
    for a, b in zip([*state.G.state_dict().values(), *state.D.state_dict().values()],
                    [*loaded.G.state_dict().values(), *loaded.D.state_dict().values()]):
        assert torch.equal(a, b)
    assert loaded.history == state.history and len(loaded.grids) == len(state.grids)
    assert torch.equal(generate(loaded, loaded.fixed_noise), generate(state, state.fixed_noise))


def test_a_release_is_found_for_the_same_settings_on_any_device_only(released):
    config, _, _, _, folder = released
    assert find_pretrained(dataclasses.replace(config, device="cuda", compile=True), folder) is not None
    assert find_pretrained(dataclasses.replace(config, lr=1e-3), folder) is None
    assert find_pretrained(config, folder.parent / "no-release-here") is None


def test_load_or_train_takes_the_release_without_training_and_retrain_ignores_it(released, tmp_path, monkeypatch):
    config, data, _, _, folder = released
    real_d_step = training.d_step
    monkeypatch.setattr(training, "d_step", lambda *a: pytest.fail("trained although a release exists"))
    state, how = load_or_train(config, data, tmp_path / "elsewhere", progress=False, pretrained=folder)
    assert how == "pretrained" and state.step == 8
    monkeypatch.setattr(training, "d_step", real_d_step)
    _, how = load_or_train(config, data, tmp_path / "elsewhere", retrain=True, progress=False, pretrained=folder)
    assert how == "trained"


def test_a_damaged_release_is_refused_and_a_missing_one_is_trained(released, tmp_path):
    config, data, _, entry, folder = released
    path = folder / entry["file"]
    original = path.read_bytes()
    path.write_bytes(original[:-10] + bytes(10))
    with pytest.raises(PretrainedError, match=rf"{entry['file']} does not match its sha256 .*git checkout"):
        load_or_train(config, data, tmp_path / "other", progress=False, pretrained=folder)
    path.unlink()
    assert load_or_train(config, data, tmp_path / "other", progress=False, pretrained=folder)[1] == "trained"


def test_a_release_cannot_be_resumed_as_if_it_were_a_training_checkpoint(released, tmp_path):
    config, data, _, entry, folder = released
    shutil.copy(folder / entry["file"], tmp_path / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="release checkpoint .* not resumed"):
        training.train_gan(dataclasses.replace(config, epochs=2), data, tmp_path, resume=True, progress=False)


SHIPPED = read_registry()


def test_the_course_ships_small_verified_releases_whose_keys_match_their_settings():
    assert len(SHIPPED) >= 2, "the MNIST and the conditional MNIST runs are shipped"
    for key, entry in SHIPPED.items():
        path = PRETRAINED / entry["file"]
        assert path.stat().st_size < 5e6 and sha256(path) == entry["sha256"], key
        assert TrainConfig.from_dict(entry["config"]).run_key() == key, f"{key}: settings changed, re-export it"
        assert entry["note"], "say how and where it was trained"
        payload = load_checkpoint(path)  # the kind says what the file holds: a release or a long start
        assert entry["kind"] == ("release" if is_release(payload) else "g_frozen_start"), key
        assert entry["kind"] == "release" or not keeps_g_state(payload), key


def test_a_whole_number_given_for_a_float_setting_is_the_same_run():
    """max_minutes=0 and max_minutes=0.0 are one setting: notebook 04 writes the first and finds the shipped run, whose
    settings record the second (their keys differed until 2026-12-01, so it would have trained instead)."""
    shipped = {TrainConfig.from_dict(e["config"]).run_key() for e in SHIPPED.values()}
    main = TrainConfig(epochs=20, sample_every=800, max_minutes=0)
    assert main.max_minutes == 0.0 and isinstance(main.max_minutes, float) and main.run_key() in shipped
    assert TrainConfig(lr=1, d_lr=1).run_key() == TrainConfig(lr=1.0, d_lr=1.0).run_key()


@pytest.mark.parametrize("key", sorted(SHIPPED))
def test_a_shipped_run_ends_with_the_grid_its_final_weights_draw(key):
    """Notebook 04 shows a run's last grid as its result: it must be the final step's, not the last sample_every's."""
    config = TrainConfig.from_dict({**SHIPPED[key]["config"], "device": "cpu"})
    state = load_run(config, find_pretrained(config))
    step, grid = state.grids[-1]
    assert step == state.step == SHIPPED[key]["step"], f"{key}: the last grid is from step {step} of {state.step}"
    drawn = training.to_uint8(generate(state, state.fixed_noise, state.fixed_labels)).cpu()
    assert (drawn.float() - grid.float()).abs().mean() < 1, "the last grid is not what the final weights draw"


@pytest.mark.parametrize("key", sorted(SHIPPED))
def test_the_shipped_generators_draw_recognisable_digits(key, mnist_judge):
    config = TrainConfig.from_dict({**SHIPPED[key]["config"], "device": "cpu"})
    state = load_run(config, find_pretrained(config))
    classifier = mnist_judge
    z = torch.randn(2000, config.latent_dim, generator=torch.Generator().manual_seed(5))
    if config.num_classes:
        requested = torch.arange(2000) % config.num_classes
        assert class_accuracy(classifier, generate(state, z, requested), requested)["right"] > 0.9
    else:
        coverage = class_coverage(classifier, generate(state, z))
        assert coverage["confident"] > 0.5 and coverage["min_class_share"] > 0.03
