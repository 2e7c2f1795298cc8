"""Load-if-present runs: one folder per configuration, so a finished run is loaded, a cut-short one resumed, and
a different configuration never overwrites another's checkpoint."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

from dcgan_utils.checkpoint import load_checkpoint
from dcgan_utils.config import TrainConfig
from dcgan_utils.data import ImageData
from dcgan_utils.training import GANState, train_gan

IGNORED = ("device", "data_dir", "compile")  # where and how a run executes, not what it learns


def run_dir(root: str | os.PathLike, config: TrainConfig) -> Path:
    """<root>/<dataset>-<12 hex digits of the settings>: the same settings always give the same folder."""
    settings = {k: v for k, v in config.to_dict().items() if k not in IGNORED}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return Path(root) / f"{config.dataset}-{digest}"


def load_or_train(config: TrainConfig, data: ImageData | None, root: str | os.PathLike, retrain: bool = False,
                  callback: Callable[[GANState], None] | None = None, progress: bool = True
                  ) -> tuple[GANState, str]:
    """The run for `config`: loaded when its checkpoint is complete, resumed when partial, else trained.

    Returns the state and what happened: "loaded", "resumed" or "trained". retrain=True trains from scratch and
    replaces that configuration's checkpoint (other configurations' folders are untouched).
    """
    folder = run_dir(root, config)
    present = (folder / "checkpoint.pt").is_file() and not retrain
    before = -1
    if present:
        before = load_checkpoint(folder / "checkpoint.pt")["step"]  # to tell "loaded" from "resumed"
    state = train_gan(config, data, out_dir=folder, resume=present, callback=callback, progress=progress)
    if not present:
        return state, "trained"
    return state, "loaded" if state.step == before else "resumed"
