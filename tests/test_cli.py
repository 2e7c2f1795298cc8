"""The command line: `python -m dcgan_utils train|sample|export`.

The fixture's run goes through `python -m dcgan_utils` in a subprocess, as users run it; the other calls go through
the same `main(argv)` in this process, with its exit status, output and errors captured the same way (a subprocess
spends 3-8 s importing torch on a 2-core CPU, most of this file's time when each call had its own).
"""

import contextlib
import io
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dcgan_utils.cli import main
from dcgan_utils.engine.checkpoint import load_checkpoint
from helpers import image_folder


def cli(*args, cwd):
    """main(args) run from the folder cwd: its returncode (SystemExit's code, 0 without one), stdout and stderr."""
    out, err, code, before = io.StringIO(), io.StringIO(), 0, os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main([str(a) for a in args])
    except SystemExit as stop:
        code = 0 if stop.code is None else stop.code if isinstance(stop.code, int) else 1  # as the interpreter
    finally:
        os.chdir(before)
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run on a folder of RGB images: 3 steps, written to runs/tiny by `python -m dcgan_utils` itself."""
    root = tmp_path_factory.mktemp("cli")
    image_folder(root / "images", repeat=8)
    run = subprocess.run([sys.executable, "-m", "dcgan_utils", "train", "--dataset", "folder", "--data-dir",
                          str(root / "images"), "--image-size", "32", "--batch-size", "4", "--g-width", "4",
                          "--d-width", "4", "--max-steps", "3", "--epochs", "1", "--device", "cpu",
                          "--out", str(root / "runs" / "tiny")], cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "3 steps in" in run.stdout, run.stdout
    return root


def test_train_writes_checkpoint_samples_and_history(trained):
    out = trained / "runs" / "tiny"
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == 3 and ck["config"]["image_size"] == 32 and ck["config"]["g_width"] == 4
    history = json.loads((out / "history.json").read_text())
    assert len(history["d_loss"]) == 3 and history["config"]["dataset"] == "folder"
    assert Image.open(out / "samples.png").mode == "RGB"


def test_resume_continues_the_run(trained):
    out = trained / "runs" / "tiny"
    run = cli("train", "--resume", "--dataset", "folder", "--data-dir", trained / "images", "--image-size", 32,
              "--batch-size", 4, "--g-width", 4, "--d-width", 4, "--max-steps", 5, "--epochs", 2, "--device", "cpu",
              "--out", out, cwd=trained)
    assert run.returncode == 0, run.stderr
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 5 and "stopped by reaching its last step" in run.stdout


def test_a_run_says_when_its_time_budget_stopped_it(tmp_path):
    image_folder(tmp_path / "images", repeat=8)
    run = cli("train", "--dataset", "folder", "--data-dir", tmp_path / "images", "--image-size", 32, "--batch-size", 4,
              "--g-width", 4, "--d-width", 4, "--epochs", 1000, "--max-minutes", 0.0001, "--device", "cpu",
              "--out", tmp_path / "run", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "stopped by its 0.0001-minute budget (--max-minutes 0: no limit)" in run.stdout, run.stdout
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] < 4000


def test_sample_npy_and_png(trained):
    ck = trained / "runs" / "tiny" / "checkpoint.pt"
    assert cli("sample", ck, "--num", 10, "--out", trained / "s.npy", "--device", "cpu", cwd=trained).returncode == 0
    arr = np.load(trained / "s.npy")
    assert arr.shape == (10, 3, 32, 32) and arr.dtype == np.uint8
    assert cli("sample", ck, "--num", 10, "--out", trained / "s.png", "--device", "cpu", cwd=trained).returncode == 0
    assert Image.open(trained / "s.png").size[0] > 32
    again = cli("sample", ck, "--num", 10, "--out", trained / "t.npy", "--device", "cpu", cwd=trained)
    assert again.returncode == 0 and np.array_equal(np.load(trained / "t.npy"), arr)  # same seed, same images


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--out", "x", "--lr", "0"], "--lr must be a number > 0"),
        (["train", "--out", "x", "--batch-size", "0"], "--batch-size must be a positive integer"),
        (["train", "--out", "x", "--image-size", "48"], "--image-size must be one of"),
        (["train", "--out", "x", "--batch-size", "many"], "invalid int value"),
        (["train", "--out", "empty", "--resume"], "--resume: no checkpoint.pt in empty"),
        (["sample", "missing.pt", "--out", "a.png"], "no checkpoint at missing.pt"),
        (["sample", "missing.pt", "--out", "a.jpg"], "must end in .png"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_give_argparse_style_errors(tmp_path, args, message):
    run = cli(*args, cwd=tmp_path)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize("args", [["train", "--help"], ["--help"], ["train", "--out", "x", "--lr", "0"],
                                  ["sample", "missing.pt", "--out", "a.jpg"], ["frobnicate"]])
def test_help_and_argument_errors_are_answered_without_importing_torch(tmp_path, args):
    """torch and torchvision take seconds to import: a typo should not wait for them (it did: 5 s for --help here)."""
    code = ("import sys\nfrom dcgan_utils.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'numpy') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert run.stdout.splitlines()[-1] == "[]", run.stdout + run.stderr


def test_help_documents_every_field_and_both_commands(tmp_path):
    text = cli("train", "--help", cwd=tmp_path).stdout
    for flag in ("--image-size", "--batch-size", "--lr", "--loss", "--device", "--precision", "--max-steps",
                 "--seed", "--resume", "--ema", "--channels-last"):
        assert flag in text
    assert "Adam step size" in text
    assert "uint8" in cli("sample", "--help", cwd=tmp_path).stdout
    flat = " ".join(text.split())  # argparse wraps lines
    assert flat.count("(default: mnist)") == 1 and flat.count("(default: 128)") == 1  # each default said once


def test_training_into_a_folder_that_holds_a_run_needs_resume_or_overwrite(trained):
    out = trained / "runs" / "kept"
    args = ["train", "--dataset", "folder", "--data-dir", trained / "images", "--image-size", 32, "--g-width", 4,
            "--d-width", 4, "--batch-size", 4, "--max-steps", 2, "--device", "cpu", "--out", out]
    assert cli(*args, cwd=trained).returncode == 0
    before = (out / "checkpoint.pt").read_bytes()
    args[-5] = 1  # --max-steps 1: another run
    refused = cli(*args, cwd=trained)
    assert refused.returncode == 2 and "already holds a run" in refused.stderr and "--overwrite" in refused.stderr
    assert (out / "checkpoint.pt").read_bytes() == before
    assert "--resume continues" in cli(*args, "--resume", "--overwrite", cwd=trained).stderr
    replaced = cli(*args, "--overwrite", cwd=trained)
    assert replaced.returncode == 0 and load_checkpoint(out / "checkpoint.pt")["step"] == 1


def test_a_conditional_run_writes_one_column_per_class_and_samples_every_class(trained):
    out = trained / "runs" / "conditional"
    run = cli("train", "--dataset", "folder", "--data-dir", trained / "images", "--image-size", 32, "--batch-size", 4,
              "--g-width", 4, "--d-width", 4, "--max-steps", 2, "--epochs", 1, "--device", "cpu", "--num-classes", 2,
              "--num-samples", 8,
              "--out", out, cwd=trained)
    assert run.returncode == 0, run.stderr
    assert load_checkpoint(out / "checkpoint.pt")["config"]["num_classes"] == 2
    assert Image.open(out / "samples.png").size == (2 * 34 + 2, 4 * 34 + 2)  # 8 samples: columns a, b; 4 rows
    sampled = cli("sample", out / "checkpoint.pt", "--num", 4, "--out", trained / "c.npy", "--device", "cpu",
                  cwd=trained)
    assert sampled.returncode == 0
    wrong = cli("train", "--dataset", "folder", "--data-dir", trained / "images", "--image-size", 32, "--max-steps", 1,
                "--num-classes", 10, "--device", "cpu", "--out", trained / "runs" / "wrong", cwd=trained)
    assert wrong.returncode == 2 and "the data have 2 classes" in wrong.stderr


def test_export_writes_a_verified_release_that_samples_as_the_run_did(trained):
    from dcgan_utils.engine.checkpoint import sha256
    from dcgan_utils.engine.config import TrainConfig
    from dcgan_utils.engine.runs import find_pretrained

    run, releases = trained / "runs" / "tiny", trained / "releases"
    done = cli("export", run, "--folder", releases, "--note", "three steps on a test folder", cwd=trained)
    assert done.returncode == 0, done.stderr
    registry = json.loads((releases / "registry.json").read_text())
    config = TrainConfig.from_dict(load_checkpoint(run / "checkpoint.pt")["config"])
    (key, entry), = registry.items()
    assert key == config.run_key() and entry["note"] == "three steps on a test folder"
    release = releases / entry["file"]
    assert entry["sha256"] == sha256(release) and entry["bytes"] == release.stat().st_size
    assert release.stat().st_size < (run / "checkpoint.pt").stat().st_size  # no optimiser states
    assert find_pretrained(config, releases) == release
    for source, out in ((run / "checkpoint.pt", "from_run.npy"), (release, "from_release.npy")):
        assert cli("sample", source, "--num", 6, "--out", trained / out, "--device", "cpu", cwd=trained).returncode == 0
    assert np.array_equal(np.load(trained / "from_run.npy"), np.load(trained / "from_release.npy"))


def test_exporting_a_folder_without_a_run_is_one_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    done = cli("export", tmp_path / "empty", "--folder", tmp_path / "releases", cwd=tmp_path)
    assert done.returncode != 0 and "checkpoint" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not (tmp_path / "releases" / "registry.json").exists()
