"""Checkpoints: round trip, and a failed write keeps the previous file (bad files: test_reliability.py)."""

import os

import pytest
import torch

from dcgan_utils.checkpoint import load_checkpoint, save_checkpoint


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
