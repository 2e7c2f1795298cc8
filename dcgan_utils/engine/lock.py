"""One writer per run folder: a lock file holding the writer's process id, taken over when that process is gone."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path


class RunLockedError(RuntimeError):
    """Another live process is writing to this run folder."""


def alive(pid: str | int) -> bool:
    """True when pid names a running process (so a file it holds may still be in use)."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def run_lock(folder: str | os.PathLike) -> Iterator[Path]:
    """Hold <folder>/.lock (holding this process's id) while writing a run; a live holder is refused, and the lock
    of a killed process is taken over."""
    path = Path(folder) / ".lock"
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = path.read_text().strip() if path.is_file() else ""
            if holder and holder != str(os.getpid()) and alive(holder):
                raise RunLockedError(f"{folder} is being written by process {holder}: wait for it to finish, stop it, "
                                     f"or train into another folder") from None
            path.unlink(missing_ok=True)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        break
    else:
        raise RunLockedError(f"could not take the lock {path}: another process keeps taking it")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)
