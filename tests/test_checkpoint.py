"""Checkpoints: atomic writes, weights-only loading, and one clear error for every kind of bad file."""

import os
import pickle

import pytest
import torch

from dcgan_utils.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


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


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint at .*train first"):
        load_checkpoint(tmp_path / "nope.pt")


@pytest.mark.parametrize("content", [b"", os.urandom(2048)], ids=["empty", "random-bytes"])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_checkpoint(path)


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint({"w": torch.randn(1000)}, tmp_path / "checkpoint.pt")
    path.write_bytes(path.read_bytes()[:-500])
    with pytest.raises(CheckpointError, match="not a loadable checkpoint"):
        load_checkpoint(path)


def test_torch_file_that_is_not_ours(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match="not a dcgan_utils checkpoint"):
        load_checkpoint(path)


class _Payload:
    """Unpickling this object would create a marker file: the attack weights-only loading stops."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_runs_code_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"format": "dcgan_utils.checkpoint/1", "x": _Payload(marker)}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="weights-only loading refuses"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the same file, loaded unsafely, does run the payload
    assert marker.exists()
