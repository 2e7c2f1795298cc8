"""Stopping a run cleanly: SIGINT (Ctrl-C, or a notebook's stop button) and SIGTERM become a request that the
training loop reads between steps, so it can save a consistent checkpoint and stop.

A second signal while the first is being handled stops at once, without saving (the usual escape hatch).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_CODES = {s.name: 128 + s.value for s in SIGNALS}  # what shells report: SIGINT 130, SIGTERM 143


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after saving a checkpoint; `state` holds the run as it was."""

    def __init__(self, signal_name: str, step: int, checkpoint: Path | None, state=None):
        where = (f"checkpoint saved to {checkpoint}; continue with resume=True (CLI: --resume)" if checkpoint
                 else "no out_dir was given, so nothing was saved; the state is in this exception's .state")
        super().__init__(f"training stopped by {signal_name} after step {step}: {where}")
        self.signal_name, self.step, self.checkpoint, self.state = signal_name, step, checkpoint, state


@dataclass
class StopRequest:
    """Set by the signal handler; the training loop checks it between steps."""

    signal_name: str | None = None


@contextlib.contextmanager
def stop_on_signals() -> Iterator[StopRequest]:
    """While inside, SIGINT and SIGTERM set the request instead of killing the process (main thread only)."""
    request = StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request  # signal handlers can only be installed from the main thread
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}

    def handler(signum, frame):
        if request.signal_name is not None:  # a second signal: give up saving and stop now
            signal.signal(signum, previous[signum])
            raise KeyboardInterrupt(f"second {signal.Signals(signum).name}: stopped without saving")
        request.signal_name = signal.Signals(signum).name

    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
