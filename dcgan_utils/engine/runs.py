"""A run's folder and the shipped releases: one folder per configuration, so a finished run is loaded without
training, a cut-short one resumed, and a shipped one taken from the package's own `dcgan_utils/pretrained/`
(package data, so a pip-installed package finds them as a checkout does).

A release checkpoint keeps what sampling, evaluation and the notebook's figures need (both networks' weights, the
fixed noise, the loss history and the fixed-noise grids) and drops the optimiser and random-number states.
`dcgan_utils/pretrained/registry.json` lists each file with its sha256, its kind, the settings it was trained with,
and where; a file whose hash does not match is refused. `python -m dcgan_utils export RUN_FOLDER` writes one. Beside
notebook 04's releases the folder holds notebook 05's long starts (kind "g_frozen_start", checkpoint.g_frozen_start:
resumable for its z-map copies; loaded here like a release, for sampling).
"""

from __future__ import annotations

import json
import os
from importlib import resources
from collections.abc import Callable
from pathlib import Path

from dcgan_utils.engine.checkpoint import (is_release, keeps_g_state, load_checkpoint, release_payload, restore,
                                           save_checkpoint, sha256)
from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.run_state import GANState, build_state
from dcgan_utils.engine.training import train_gan

PRETRAINED = Path(str(resources.files("dcgan_utils") / "pretrained"))  # inside the package: a wheel ships it


class PretrainedError(ValueError):
    """A registered pretrained file is damaged, replaced, or does not fit the configuration."""


def run_dir(root: str | os.PathLike, config: TrainConfig) -> Path:
    """<root>/<config.run_key()>: the same settings always give the same folder."""
    return Path(root) / config.run_key()


def read_registry(folder: str | os.PathLike = PRETRAINED) -> dict[str, dict]:
    """{run key: entry} from <folder>/registry.json; empty when there is none."""
    path = Path(folder) / "registry.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def export_release(checkpoint: str | os.PathLike, folder: str | os.PathLike = PRETRAINED, note: str = "",
                   keep: Callable[[dict], dict] = release_payload) -> dict:
    """Write a finished run's release checkpoint into folder as <run key>.pt and record it in registry.json; `keep`
    picks what the file holds (default: a release; checkpoint.g_frozen_start: a start for notebook 05's z-map
    copies)."""
    payload = load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(payload["config"])
    key = config.run_key()
    folder = Path(folder)
    kept = keep(payload)
    target = save_checkpoint(kept, folder / f"{key}.pt")
    entry = {"file": target.name, "sha256": sha256(target), "bytes": target.stat().st_size, "step": payload["step"],
             "precision": payload["precision"], "config": config.to_dict(), "note": note,
             "kind": "release" if is_release(kept) else "training" if keeps_g_state(kept) else "g_frozen_start"}
    registry = {**read_registry(folder), key: entry}
    (folder / "registry.json").write_text(json.dumps(registry, indent=1, sort_keys=True) + "\n")
    return entry


def find_pretrained(config: TrainConfig, folder: str | os.PathLike = PRETRAINED) -> Path | None:
    """The verified shipped file (a release, or a long start) for exactly these settings, or None when none is
    registered or present."""
    entry = read_registry(folder).get(config.run_key())
    if entry is None:
        return None
    path = Path(folder) / entry["file"]
    if not path.is_file():
        return None
    if sha256(path) != entry["sha256"]:
        raise PretrainedError(
            f"{path} does not match its sha256 in {Path(folder) / 'registry.json'} (damaged or replaced): restore it "
            f"with `git checkout -- {path.name}` in {path.parent}, or train instead (notebook 04: RETRAIN = True; "
            f"load_or_train: retrain=True)"
        )
    return path


def load_run(config: TrainConfig, path: str | os.PathLike) -> GANState:
    """A GANState with a checkpoint's (or release's) weights, history and grids, for sampling and evaluation: no data
    loaded, nothing written, so it works from a read-only folder."""
    state = build_state(config)
    restore(state, load_checkpoint(path), resume=False)
    return state


def load_or_train(config: TrainConfig, data: ImageData | None, root: str | os.PathLike, retrain: bool = False,
                  callback: Callable[[GANState], None] | None = None, progress: bool = True,
                  pretrained: str | os.PathLike | None = PRETRAINED) -> tuple[GANState, str]:
    """The run for `config`: loaded when its checkpoint is finished, resumed when cut short, taken from the course's
    verified shipped file when there is one for exactly these settings (loaded as a release is), else trained.

    Returns the state and what happened: "loaded", "resumed", "pretrained" or "trained". retrain=True trains from
    scratch and replaces that configuration's checkpoint (other configurations' folders are untouched);
    pretrained=None never uses a release.
    """
    checkpoint = run_dir(root, config) / "checkpoint.pt"
    present = checkpoint.is_file() and not retrain
    if present:
        saved = load_checkpoint(checkpoint)
        if saved.get("finished", False) and TrainConfig.from_dict(saved["config"]).run_key() == config.run_key():
            return load_run(config, checkpoint), "loaded"
    release = find_pretrained(config, pretrained) if pretrained is not None and not present and not retrain else None
    if release is not None:
        return load_run(config, release), "pretrained"
    state = train_gan(config, data, out_dir=checkpoint.parent, resume=present, overwrite=retrain, callback=callback,
                      progress=progress)
    return state, "resumed" if present else "trained"
