"""The course installed as Colab, Kaggle or a JupyterHub install it: a wheel outside the checkout, an install cell in
every notebook, links built from one repository address, and data in a per-user folder instead of site-packages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dcgan_utils.course.build import NOTEBOOKS, course_notebooks, execute
from dcgan_utils.engine import data as data_module
from dcgan_utils.engine.runs import PRETRAINED, read_registry

ROOT = Path(__file__).resolve().parents[1]
REPOSITORY = re.search(r'^Repository = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def test_every_notebook_installs_the_package_from_the_one_repository_address_before_its_parameters():
    for notebook in course_notebooks():
        cells = nbformat.read(notebook, as_version=4).cells
        code = [c for c in cells if c.cell_type == "code"]
        install, params = code[0], code[1]
        assert "install" in install.metadata.get("tags", []) and "parameters" in params.metadata.get("tags", [])
        assert f'REPOSITORY = "{REPOSITORY}"' in install.source, f"{notebook.name}: install cell's address"
        assert 'find_spec("dcgan_utils") is None' in install.source, "the install must be guarded"
        command = next(line for line in install.source.splitlines() if "subprocess.run(" in line)
        assert not re.search(r"torch|--upgrade|-U\b|--force-reinstall", command), "it must not (re)install torch"


def test_readme_has_an_open_in_colab_link_per_notebook_built_from_the_repository_address():
    readme = (ROOT / "README.md").read_text()
    owner_repo = REPOSITORY.removeprefix("https://github.com/")
    for notebook in course_notebooks():
        link = f"https://colab.research.google.com/github/{owner_repo}/blob/main/notebooks/{notebook.name}"
        assert link in readme, f"README lacks the Colab link of {notebook.name}"


def test_install_cell_does_nothing_where_the_package_is_importable():
    install = nbformat.read(NOTEBOOKS / "00_setup.ipynb", as_version=4).cells[1].source
    calls = []
    namespace = {"__name__": "__main__"}
    real_run = subprocess.run
    subprocess.run = lambda *a, **k: calls.append(a)  # noqa: E731  (restored below)
    try:
        exec(install, namespace)
    finally:
        subprocess.run = real_run
    assert calls == [] and "REPOSITORY" not in namespace


def _run_install_cell(monkeypatch, importable_after_pip: bool, commands: list | None = None) -> list:
    """Run 00's install cell where dcgan_utils is missing; pip is recorded (its command into commands), not run; the
    import caches' reset is recorded; find_spec finds the package after pip only when importable_after_pip."""
    import importlib
    import importlib.util

    install = nbformat.read(NOTEBOOKS / "00_setup.ipynb", as_version=4).cells[1].source
    events, commands = [], [] if commands is None else commands
    monkeypatch.setattr(subprocess, "run", lambda command, **k: (events.append("pip"), commands.append(command)))
    monkeypatch.setattr(importlib, "invalidate_caches", lambda: events.append("caches reset"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name: object() if importable_after_pip and "caches reset" in events else None)
    exec(install, {"__name__": "__main__"})
    return events


def test_install_cell_imports_after_installing_or_says_to_restart_the_kernel(monkeypatch):
    """A fresh install is found once the import caches are reset; a --user install on a read-only hub is not on
    this kernel's path (and a newer torch it brought would come after the host's): one error says to restart."""
    assert _run_install_cell(monkeypatch, True) == ["pip", "caches reset"]
    with pytest.raises(RuntimeError, match="installed but this kernel cannot import it yet: restart the kernel"):
        _run_install_cell(monkeypatch, False)


def test_every_notebook_has_the_same_install_cell():
    cells = {nb.name: nbformat.read(nb, as_version=4).cells[1].source for nb in course_notebooks()}
    assert len(set(cells.values())) == 1, f"install cells differ: {sorted(cells)}"


@pytest.mark.parametrize("platform, nvidia_smi, devices, cpu_builds", [
    ("linux", None, [], True),  # a CPU-only hub: PyTorch's CPU wheels, not PyPI's CUDA build (4.4 GB in our .venv)
    ("linux", "/usr/bin/nvidia-smi", [], False),
    ("linux", None, ["/dev/nvidia0"], False),  # a GPU container without nvidia-smi on its PATH
    ("linux", None, ["/dev/dxg"], False),  # WSL2 with a GPU: no /dev/nvidia*, nvidia-smi off the PATH
    ("darwin", None, [], False),  # PyPI's macOS and Windows wheels are CPU (or MPS) builds already
    ("win32", None, [], False),
])
def test_install_cell_takes_pytorchs_cpu_builds_only_on_linux_without_an_nvidia_gpu(monkeypatch, platform, nvidia_smi,
                                                                                     devices, cpu_builds):
    import glob

    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(shutil, "which", lambda name: nvidia_smi if name == "nvidia-smi" else None)
    monkeypatch.setattr(glob, "glob", lambda pattern: [d for d in devices if d.startswith(pattern.split("[")[0])])
    commands = []
    _run_install_cell(monkeypatch, True, commands)
    (command,) = commands
    assert command[:5] == [sys.executable, "-m", "pip", "install", "--quiet"]
    assert command[-1] == f"dcgan-utils @ git+{REPOSITORY}"
    index = ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
    assert command[5:-1] == (index if cpu_builds else [])


def test_data_root_is_the_checkout_data_folder_inside_a_checkout_and_a_user_folder_outside(monkeypatch, tmp_path):
    monkeypatch.delenv("DCGAN_DATA_DIR", raising=False)
    assert data_module.data_root() == ROOT / "data"
    monkeypatch.setattr(data_module, "CHECKOUT", tmp_path / "site-packages")  # as in a wheel: no pyproject beside
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_module.data_root() == tmp_path / "xdg" / "dcgan-course"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_module.data_root() == tmp_path / "home" / ".local" / "share" / "dcgan-course"
    monkeypatch.setenv("DCGAN_DATA_DIR", str(tmp_path / "mine"))
    assert data_module.data_root() == tmp_path / "mine"


def _build_wheel(out: Path, tmp_path: Path) -> Path:
    """A wheel of the working tree, built from a copy (setuptools writes build/ in the tree it builds)."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, check=True, capture_output=True,
                           text=True).stdout.split()
    source = tmp_path / "source"
    for name in files:
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                            str(out), str(source)], check=True, capture_output=True, text=True)
    # what a learner's `make lab` would print: setuptools names a package folder missing from pyproject's packages
    assert "would be ignored" not in built.stdout + built.stderr, built.stderr[-2000:]
    return next(out.glob("dcgan_utils-*.whl"))


@pytest.mark.slow
def test_wheel_ships_the_releases_and_runs_notebook_04_outside_the_checkout_on_the_shipped_run(tmp_path, mnist_root):
    wheel = _build_wheel(tmp_path / "dist", tmp_path)
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, text=True)
    shipped = site / "dcgan_utils" / "pretrained"
    assert read_registry(shipped) == read_registry(PRETRAINED) and read_registry(shipped)
    assert sorted(p.name for p in shipped.glob("*.pt")) == sorted(p.name for p in PRETRAINED.glob("*.pt"))

    # The installed package, not the checkout: another folder, PYTHONPATH first, data in the user's own folder.
    xdg = tmp_path / "xdg"
    (xdg / "dcgan-course").mkdir(parents=True)
    (xdg / "dcgan-course" / "MNIST").symlink_to(mnist_root / "MNIST", target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if k not in ("DCGAN_DATA_DIR", "DCGAN_RUNS_DIR", "DCGAN_SMOKE")}
    env.update(PYTHONPATH=os.pathsep.join([str(site), os.environ["PYTHONPATH"]]), XDG_DATA_HOME=str(xdg))  # + the network guard
    work = tmp_path / "learner"
    work.mkdir()
    probe = subprocess.run(
        [sys.executable, "-c", "import dcgan_utils.engine.data as d, dcgan_utils.engine.runs as r; "
         "print(d.__file__); print(d.data_root()); print(r.PRETRAINED)"],
        cwd=work, env=env, check=True, capture_output=True, text=True).stdout.split("\n")
    assert probe[0].startswith(str(site)), f"imported {probe[0]}, not the installed wheel"
    assert probe[1] == str(xdg / "dcgan-course") and probe[2] == str(shipped)

    old = os.environ.copy()
    os.environ.clear()
    os.environ.update(env)  # the kernel papermill starts inherits this process's environment
    try:
        out = execute(NOTEBOOKS / "04_train_mnist.ipynb", tmp_path / "out", {"NUM_EVAL": 500}, cwd=work)
    finally:
        os.environ.clear()
        os.environ.update(old)
    printed = "\n".join(o.get("text", "") for c in nbformat.read(out, as_version=4).cells for o in c.get("outputs", []))
    assert re.search(r"^pretrained: 9,360 steps", printed, re.M), "notebook 04 did not load the shipped main run"
    assert re.search(r"^pretrained: 4,680 steps", printed, re.M), "notebook 04 did not load the shipped conditional run"
    assert re.search(r"^MNIST classifier: .*shipped with the package", printed, re.M), "04 did not load the shipped judge"
    assert not (xdg / "dcgan-course" / "classifiers").exists(), "notebook 04 trained a classifier of its own"
