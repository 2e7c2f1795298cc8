"""The checkpoint format, in one place: training and release payloads, to and from a run's state, RNG states,
atomic writes and weights-only loads.

Files load on the CPU whatever device wrote them: models and optimisers take their tensors through load_state_dict
(which copies onto their device), RNG states stay CPU ByteTensors, grids stay on the CPU, and the fixed noise is
moved explicitly. So a checkpoint written on a GPU samples on a laptop and one written on a laptop resumes on a GPU
(resuming on another device type continues the run, but not bit for bit: the kernels differ).
"""

from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import numpy as np
import torch

from dcgan_utils.engine.config import ARCHITECTURE, TrainConfig
from dcgan_utils.engine.lock import alive
from dcgan_utils.engine.run_state import GANState, set_optimiser_settings

FORMAT = "dcgan_utils.checkpoint/1"  # marks a file as ours; bump when the layout changes
# what a release keeps: enough to sample, evaluate and draw the run's figures, not to resume
RELEASE = ("config", "step", "precision", "G", "D", "ema", "fixed_noise", "history", "grids")


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint of this package."""


class OutputNotWritableError(OSError):
    """The folder a run must write to cannot be created or written."""


def check_writable(folder: str | os.PathLike) -> Path:
    """Create folder if needed and prove a file can be written there; raise before any work starts otherwise."""
    folder = Path(folder)
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as err:
        raise OutputNotWritableError(
            f"cannot write to the output folder {folder} ({err.strerror or type(err).__name__}): choose a folder you "
            f"can write to, or free space there"
        ) from err
    return folder


def rng_states() -> dict:
    """The global generators' states (Python, NumPy, PyTorch CPU and CUDA), as CPU tensors and plain values."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict) -> None:
    """Restore what rng_states() returned; CUDA states go to as many GPUs as both the file and this machine have."""
    random.setstate(_as_tuples(states["python"]))
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy(), int(pos), int(has_gauss), gauss))  # numpy makes the key uint32
    torch.set_rng_state(states["torch"].cpu())
    if states["cuda"] and torch.cuda.is_available():
        for index, state in enumerate(states["cuda"][: torch.cuda.device_count()]):  # 8 saved, 1 visible: the first
            torch.cuda.set_rng_state(state.cpu(), index)


def _as_tuples(value):
    """random.setstate needs tuples where serialisation may have produced lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def training_payload(state: GANState) -> dict:
    """Everything needed to continue the run exactly where it is."""
    return {
        "config": state.config.to_dict(), "step": state.step, "precision": state.precision,
        "train_seconds": state.train_seconds, "finished": state.finished,
        "G": state.G.state_dict(), "D": state.D.state_dict(),
        "ema": state.ema.state_dict() if state.ema is not None else None,
        "opt_g": state.opt_g.state_dict(), "opt_d": state.opt_d.state_dict(),
        "scaler_g": state.scaler_g.state_dict(), "scaler_d": state.scaler_d.state_dict(),
        "noise": state.noise.get_state(), "fixed_noise": state.fixed_noise.cpu(), "rng": rng_states(),
        "history": state.history, "grids": state.grids,
    }


def release_payload(payload: dict) -> dict:
    """The part of a training payload that a release keeps (about half the size; it cannot be resumed)."""
    return {k: payload[k] for k in RELEASE}


def g_frozen_start(payload: dict) -> dict:
    """A training payload for continuations that keep G's weights as they are (notebook 05's z-map copies, whose
    noise map gets a fresh optimiser): G's Adam moments and all grids but the last dropped, everything else kept, so
    D, the data order and the random-number generators resume exactly (about a third of the full payload's size)."""
    if is_release(payload):
        raise CheckpointError("a release checkpoint has no optimiser or random-number states to keep: write the start "
                              "from the run's training checkpoint (its checkpoint.pt)")
    return {**payload, "opt_g": {**payload["opt_g"], "state": {}}, "grids": payload["grids"][-1:]}


def keeps_g_state(payload: dict) -> bool:
    """False for a release or a g_frozen_start payload: resuming it would restart G's Adam moments from zero."""
    return not is_release(payload) and bool(payload["opt_g"]["state"])


def require_g_state(payload: dict) -> None:
    """Refuse to continue G's training from a payload past step 0 that keeps no Adam moments for G."""
    if payload["step"] and not keeps_g_state(payload):
        raise CheckpointError("this checkpoint keeps no optimiser state for G (a start for notebook 05's z-map copies, "
                              "written by checkpoint.g_frozen_start): resuming G would restart its Adam moments; "
                              "continue it with collapse.frozen_d_runs' z-map arms, or train the run anew")


def is_release(payload: dict) -> bool:
    """True for a release payload (weights, noise, history, grids; no optimiser or RNG states)."""
    return "opt_g" not in payload


def restore(state: GANState, payload: dict, resume: bool = True) -> None:
    """Load a payload into a state built from the same architecture, on any device.

    resume=False loads what sampling and evaluation need (weights, fixed noise, history, grids) and leaves the
    optimisers and random-number generators as they are; a release payload can only be loaded that way.
    """
    saved = TrainConfig.from_dict(payload["config"])
    wrong = [f"{k} (checkpoint {getattr(saved, k)!r}, config {getattr(state.config, k)!r})"
             for k in ARCHITECTURE if getattr(saved, k) != getattr(state.config, k)]
    if wrong:
        raise ValueError(f"checkpoint does not match the config: {', '.join(wrong)}; use the checkpoint's settings")
    if resume and is_release(payload):
        raise CheckpointError("a release checkpoint (weights only) can be sampled and evaluated but not resumed; "
                              "train a new run instead")
    state.G.load_state_dict(payload["G"])
    state.D.load_state_dict(payload["D"])
    if state.ema is not None and payload["ema"] is not None:
        state.ema.load_state_dict(payload["ema"])
    state.fixed_noise = payload["fixed_noise"].to(state.device)
    state.step, state.history, state.grids = payload["step"], payload["history"], payload["grids"]
    state.train_seconds = payload.get("train_seconds", 0.0)
    state.finished = payload.get("finished", False)
    if not resume:
        return
    state.opt_g.load_state_dict(payload["opt_g"])
    state.opt_d.load_state_dict(payload["opt_d"])
    set_optimiser_settings(state)  # the saved states carry their own rates and betas: a resume may change them
    state.scaler_g.load_state_dict(payload["scaler_g"])
    state.scaler_d.load_state_dict(payload["scaler_d"])
    state.noise.set_state(payload["noise"].cpu())
    set_rng_states(payload["rng"])


def save_checkpoint(payload: dict, path: str | os.PathLike) -> Path:
    """Write payload to path atomically: a temporary file in the same folder, fsync, then rename over the old one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see the old file or the new one
    finally:
        tmp.unlink(missing_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a writer that was killed mid-save
        if not alive(stale.name.rsplit("-", 1)[-1]):
            stale.unlink(missing_ok=True)
    return path


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint of this package on the CPU, with weights_only=True (no code in the file can run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train first to create one")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # garbage makes the unpickler raise almost anything (IndexError, KeyError, ...)
        reason = next(iter(str(err).splitlines()), type(err).__name__)
        raise CheckpointError(
            f"{path} is not a loadable checkpoint (empty, truncated, not a torch file, or it holds objects that "
            f"weights-only loading refuses): {reason}. Use a checkpoint written by dcgan_utils."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{path} is a torch file but not a dcgan_utils checkpoint ({FORMAT}); found {found!r}")
    return payload
