"""Shared fixtures: no network inside the test process, and real data found or skipped (or failed in CI)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from dcgan_utils.data import data_root, dataset_status

REQUIRE_DATA = os.environ.get("DCGAN_REQUIRE_DATA") == "1"
_real_connect = socket.socket.connect


def _local_only_connect(sock: socket.socket, address):
    """socket.connect that allows Unix sockets and loopback, and refuses everything else."""
    if sock.family == socket.AF_UNIX or (isinstance(address, tuple) and address[0] in ("127.0.0.1", "::1", "localhost")):
        return _real_connect(sock, address)
    raise ConnectionRefusedError(f"tests must not reach the network (tried to connect to {address})")


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block outgoing connections from the test process: a test that tries to download fails at once."""
    monkeypatch.setattr(socket.socket, "connect", _local_only_connect)


def _need(what: str, hint: str):
    """Skip with a message saying what is missing, or fail when DCGAN_REQUIRE_DATA=1 (as in CI)."""
    message = f"{what} not found: {hint}"
    if REQUIRE_DATA:
        pytest.fail(f"{message} (DCGAN_REQUIRE_DATA=1, so this is an error, not a skip)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """A data root holding the real MNIST files."""
    folder, present = dataset_status()["mnist"]
    if not present:
        _need(f"MNIST in {folder}", "set DCGAN_DATA_DIR to a folder with MNIST/raw/*.gz, or download it once with "
              "load_dataset('mnist') on a machine with a network")
    return data_root()


@pytest.fixture(scope="session")
def cifar_subset() -> Path:
    """An ImageFolder tree of real CIFAR-10 images (the course's offline subset)."""
    folder = data_root() / "cifar10-subset" / "train"
    if not folder.is_dir():
        _need(f"the CIFAR-10 subset in {folder}", "link or copy shared/data/cifar10-subset into the data root")
    return folder
