"""Load-if-present runs: one folder per configuration, so a finished run is loaded, a cut-short one resumed, a
shipped one taken from pretrained/, and a different configuration never overwrites another's checkpoint."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dcgan_utils.checkpoint import load_checkpoint
from dcgan_utils.config import TrainConfig
from dcgan_utils.data import ImageData
from dcgan_utils.pretrained import FOLDER as PRETRAINED
from dcgan_utils.pretrained import find_pretrained, load_release
from dcgan_utils.state import GANState
from dcgan_utils.training import train_gan


def run_dir(root: str | os.PathLike, config: TrainConfig) -> Path:
    """<root>/<config.run_key()>: the same settings always give the same folder."""
    return Path(root) / config.run_key()


def load_or_train(config: TrainConfig, data: ImageData | None, root: str | os.PathLike, retrain: bool = False,
                  callback: Callable[[GANState], None] | None = None, progress: bool = True,
                  pretrained: str | os.PathLike | None = PRETRAINED) -> tuple[GANState, str]:
    """The run for `config`: loaded when its checkpoint is complete, resumed when partial, taken from the course's
    verified pretrained release when there is one for exactly these settings, else trained.

    Returns the state and what happened: "loaded", "resumed", "pretrained" or "trained". retrain=True trains from
    scratch and replaces that configuration's checkpoint (other configurations' folders are untouched);
    pretrained=None never uses a release.
    """
    folder = run_dir(root, config)
    present = (folder / "checkpoint.pt").is_file() and not retrain
    release = find_pretrained(config, pretrained) if pretrained is not None and not present and not retrain else None
    if release is not None:
        return load_release(config, release), "pretrained"
    before = -1
    if present:
        before = load_checkpoint(folder / "checkpoint.pt")["step"]  # to tell "loaded" from "resumed"
    state = train_gan(config, data, out_dir=folder, resume=present, callback=callback, progress=progress)
    if not present:
        return state, "trained"
    return state, "loaded" if state.step == before else "resumed"
