"""Shared fixtures: no network inside the test process, and real data found or skipped (or failed in CI)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

from dcgan_utils.engine.data import data_root, dataset_status, load_dataset
from dcgan_utils.engine.device import available_cpus

from offline.sitecustomize import local_only_connect

REQUIRE_DATA = os.environ.get("DCGAN_REQUIRE_DATA") == "1"
OFFLINE = Path(__file__).with_name("offline")
REPORT: dict[str, list[str]] = {}  # reliability summary: category -> what was tried and what happened

# Every process the tests start (notebook kernels, the CLI, nbval) imports the guard in offline/sitecustomize.py.
os.environ["DCGAN_BLOCK_NETWORK"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(OFFLINE), os.environ.get("PYTHONPATH")]))

# `pytest -n N` (make test): the N workers share the cores instead of each running a thread per core. On 2 cores, two
# processes of two threads took 538 and 544 ms a training step, two of one thread 43 and 44 (benchmarks/threads.py).
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    THREADS = max(1, available_cpus() // WORKERS)
    os.environ["OMP_NUM_THREADS"] = str(THREADS)  # and the processes the tests start: kernels, the CLI, torchrun
    torch.set_num_threads(THREADS)


@contextlib.contextmanager
def exclusive(name: str, folder: Path) -> Iterator[None]:
    """Hold an exclusive lock while preparing something in `folder` that processes share (MNIST's extracted files in
    the data root): make test's workers, or any other test run on the same folder. The others wait, then find it
    ready. The lock file, in the temp folder, is named after `name`, the user and the folder's path. Without fcntl
    (Windows) nothing is locked, so two processes may both prepare it."""
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    user = getattr(os, "getuid", lambda: "")()  # another user's lock file would not open for writing
    with open(Path(tempfile.gettempdir()) / f"dcgan-{name}-{user}-{key}.lock", "w") as lock:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block outgoing connections from the test process: a test that tries to download fails at once."""
    monkeypatch.setattr(socket.socket, "connect", local_only_connect)


@pytest.fixture(autouse=True)
def keep_the_threads():
    """Give the process the PyTorch thread count it had before each test: a test that sets it (test_toy sets 2)
    would leave it to every later test; under pytest -n two workers then oversubscribe 2 cores (a 5-second test took
    81 s in a run where test_toy did so; under 13 s once it gave them back)."""
    threads = torch.get_num_threads()
    yield
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@pytest.fixture
def report():
    """record(category, line): add a line to the reliability summary printed at the end of the run."""
    def record(category: str, line: str) -> None:
        REPORT.setdefault(category, []).append(line)
    return record


def pytest_sessionfinish(session):
    """Under pytest -n, each worker hands its summary lines to the process that prints the summary."""
    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["report"] = REPORT


@pytest.hookimpl(optionalhook=True)  # an xdist hook: absent without pytest-xdist
def pytest_testnodedown(node, error):
    for category, lines in getattr(node, "workeroutput", {}).get("report", {}).items():
        REPORT.setdefault(category, []).extend(lines)


def pytest_terminal_summary(terminalreporter):
    """Print what the reliability tests tried and how each case ended."""
    if not REPORT:
        return
    terminalreporter.section("reliability summary")
    for category, lines in REPORT.items():
        terminalreporter.write_line(f"{category}: {len(lines)}")
        for line in lines:
            terminalreporter.write_line(f"  - {line}")


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
    with exclusive("mnist", folder):  # the first load extracts the four .gz files: one process writes them
        load_dataset("mnist", train=False)
    return data_root()


@pytest.fixture(scope="session")
def mnist_judge():
    """The MNIST classifier shipped with the package; `.path` is its file (its training path: test_metrics.py)."""
    from dcgan_utils.evaluation.metrics import shipped_mnist_classifier

    return shipped_mnist_classifier()


@pytest.fixture(scope="session")
def cifar_subset() -> Path:
    """An ImageFolder tree of real CIFAR-10 images (the course's offline subset)."""
    folder = data_root() / "cifar10-subset" / "train"
    if not folder.is_dir():
        _need(f"the CIFAR-10 subset in {folder}", "link or copy shared/data/cifar10-subset into the data root")
    return folder


@pytest.fixture(scope="session")
def cifar_data() -> Path:
    """A data root with CIFAR-10: torchvision's files, or the course's offline subset."""
    root = data_root()
    if not (dataset_status()["cifar10"][1] or (root / "cifar10-subset" / "train").is_dir()):
        _need(f"CIFAR-10 in {root}", "link or copy shared/data/cifar10-subset into the data root, or download "
              "torchvision's CIFAR-10 there once on a machine with a network")
    return root
