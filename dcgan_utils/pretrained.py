"""Pretrained runs shipped with the course, so a class need not wait for training.

A release checkpoint keeps what sampling, evaluation and the notebook's figures need (both networks' weights, the
fixed noise, the loss history and the fixed-noise grids) and drops the optimiser and random-number states (so it
is about half the size of a training checkpoint, and cannot be resumed). `pretrained/registry.json` lists each file
with its sha256, the settings it was trained with, and where; a file whose hash does not match is refused.

    python -m dcgan_utils.pretrained export RUN_FOLDER [--note TEXT]   # a finished run -> pretrained/ + registry
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from dcgan_utils.checkpoint import load_checkpoint, save_checkpoint
from dcgan_utils.config import TrainConfig
from dcgan_utils.state import GANState, build_state, restore

FOLDER = Path(__file__).resolve().parent.parent / "pretrained"
RELEASE = ("config", "step", "precision", "G", "D", "ema", "fixed_noise", "history", "grids")  # what a release keeps


class PretrainedError(ValueError):
    """A registered pretrained file is damaged, replaced, or does not fit the configuration."""


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_registry(folder: str | os.PathLike = FOLDER) -> dict[str, dict]:
    """{run key: entry} from <folder>/registry.json; empty when there is none."""
    path = Path(folder) / "registry.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def export_release(checkpoint: str | os.PathLike, folder: str | os.PathLike = FOLDER, note: str = "") -> dict:
    """Write a finished run's release checkpoint into folder as <run key>.pt and record it in registry.json."""
    payload = load_checkpoint(checkpoint)
    config = TrainConfig.from_dict(payload["config"])
    key = config.run_key()
    folder = Path(folder)
    target = save_checkpoint({k: payload[k] for k in RELEASE}, folder / f"{key}.pt")
    entry = {"file": target.name, "sha256": sha256(target), "bytes": target.stat().st_size, "step": payload["step"],
             "precision": payload["precision"], "config": config.to_dict(), "note": note}
    registry = {**read_registry(folder), key: entry}
    (folder / "registry.json").write_text(json.dumps(registry, indent=1, sort_keys=True) + "\n")
    return entry


def find_pretrained(config: TrainConfig, folder: str | os.PathLike = FOLDER) -> Path | None:
    """The verified release file for exactly these settings, or None when none is registered or present."""
    entry = read_registry(folder).get(config.run_key())
    if entry is None:
        return None
    path = Path(folder) / entry["file"]
    if not path.is_file():
        return None
    if sha256(path) != entry["sha256"]:
        raise PretrainedError(
            f"{path} does not match its sha256 in {Path(folder) / 'registry.json'} (damaged or replaced): restore it "
            f"with `git checkout -- {path.name}` in {path.parent}, or train instead (RETRAIN = True / retrain=True)"
        )
    return path


def load_release(config: TrainConfig, path: str | os.PathLike) -> GANState:
    """A GANState with a release checkpoint's weights, history and grids (fresh optimisers: not resumable)."""
    state = build_state(config)
    restore(state, load_checkpoint(path, map_location=state.device))
    return state


def main(argv: list[str] | None = None) -> None:
    """Command line: export a finished run as a release checkpoint."""
    parser = argparse.ArgumentParser(prog="python -m dcgan_utils.pretrained", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="export RUN_FOLDER/checkpoint.pt to pretrained/ and register it")
    export.add_argument("run", type=Path, help="a run folder holding checkpoint.pt")
    export.add_argument("--note", default="", help="how and where it was trained, for the registry")
    export.add_argument("--folder", type=Path, default=FOLDER, help=f"release folder (default: {FOLDER})")
    args = parser.parse_args(argv)
    entry = export_release(args.run / "checkpoint.pt", args.folder, args.note)
    print(f"wrote {args.folder / entry['file']} ({entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}...)")


if __name__ == "__main__":
    main()
