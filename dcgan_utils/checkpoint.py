"""Checkpoints: everything a run needs to continue bit for bit, written atomically, loaded weights-only."""

from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import torch

FORMAT = "dcgan_utils.checkpoint/1"  # marks a file as ours; bump when the layout changes


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
    """The global generators' states (Python, NumPy, PyTorch CPU and CUDA), as tensors and plain values."""
    np_state = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict) -> None:
    """Restore what rng_states() returned."""
    random.setstate(_as_tuples(states["python"]))
    name, keys, pos, has_gauss, gauss = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    torch.set_rng_state(states["torch"])
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _as_tuples(value):
    """random.setstate needs tuples where serialisation may have produced lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


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
        if not _alive(stale.name.rsplit("-", 1)[-1]):
            stale.unlink(missing_ok=True)
    return path


def _alive(pid: str) -> bool:
    """True when pid names a running process (so its temporary file may still be in use)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint of this package with weights_only=True (no code in the file can run)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train first to create one")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
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
