"""Command line: `python -m dcgan_utils train ...`, `... sample CHECKPOINT ...` and `... export RUN_FOLDER`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from pathlib import Path

from dcgan_utils.engine.config import TrainConfig, field_help  # these three import no torch
from dcgan_utils.engine.interrupt import EXIT_CODES, TrainingInterrupted
from dcgan_utils.engine.lock import RunLockedError

# torch, torchvision and the engine are imported by each command after its arguments are parsed (about 4 s on a
# 2-core CPU), so that --help and a mistyped argument are answered at once.


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field, with the field's help text (the parser's formatter adds the default)."""
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        if isinstance(f.default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=f.default,
                                help=field_help(f.name))
        else:
            kind = {int: int, float: float}.get(type(f.default), str)
            parser.add_argument(flag, type=kind, default=f.default, metavar=f.name.upper(), help=field_help(f.name))


def config_from_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> TrainConfig:
    """Build the TrainConfig, turning its ValueError into an argparse-style error."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)}
    try:
        return TrainConfig(**values)
    except ValueError as err:
        message = re.sub(r"TrainConfig\.(\w+)", lambda m: "--" + m.group(1).replace("_", "-"), str(err))
        parser.error(message)


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    config = config_from_args(parser, args)
    out = Path(args.out)
    if args.resume and not (out / "checkpoint.pt").is_file():
        parser.error(f"--resume: no checkpoint.pt in {out}; train without --resume first")
    if args.resume and args.overwrite:
        parser.error("--resume continues the run in OUT and --overwrite replaces it: choose one")
    from torchvision.utils import save_image

    from dcgan_utils.engine import distributed
    from dcgan_utils.engine.run_state import generate
    from dcgan_utils.engine.training import train_gan

    if distributed.launched():  # under torchrun: this process is one rank; rank 0 writes the outputs
        state = distributed.train_distributed(config, out, resume=args.resume, overwrite=args.overwrite)
        if os.environ.get("RANK", "0") != "0":
            return
    else:
        state = train_gan(config, out_dir=out, resume=args.resume, overwrite=args.overwrite)
    samples = generate(state, state.fixed_noise, state.fixed_labels)
    save_image(samples, out / "samples.png", nrow=config.num_classes or 8, normalize=True, value_range=(-1, 1))
    (out / "history.json").write_text(json.dumps({"config": config.to_dict(), **state.history}))
    why = (f"its {config.max_minutes:g}-minute budget (--max-minutes 0: no limit)"
           if config.budget_spent(state.train_seconds) else "reaching its last step")
    print(f"{state.step} steps in {state.train_seconds:.0f} s of training, stopped by {why}; "
          f"wrote {out / 'checkpoint.pt'}, {out / 'samples.png'}, {out / 'history.json'}")


def _sample(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        parser.error(f"--out must end in .png (an image grid) or .npy (a uint8 array), got {out.name!r}")
    if args.num < 1:
        parser.error(f"--num must be at least 1, got {args.num}")
    import numpy as np
    import torch
    from torchvision.utils import save_image

    from dcgan_utils.engine.checkpoint import load_checkpoint, restore
    from dcgan_utils.engine.data import to_uint8
    from dcgan_utils.engine.run_state import build_state, generate

    payload = load_checkpoint(args.checkpoint)
    config = dataclasses.replace(TrainConfig.from_dict(payload["config"]), device=args.device)
    state = build_state(config)
    restore(state, payload, resume=False)  # weights only: any device can sample a run written on any other
    z = torch.randn(args.num, config.latent_dim, generator=torch.Generator().manual_seed(args.seed))
    images = torch.cat([generate(state, chunk) for chunk in z.split(500)]).cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, to_uint8(images).numpy())  # (N, C, H, W) uint8
    else:
        save_image(images, out, nrow=int(args.num**0.5) or 1, normalize=True, value_range=(-1, 1))
    print(f"wrote {args.num} samples to {out}")


def _export(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    from dcgan_utils.engine.runs import PRETRAINED, export_release

    folder = args.folder or PRETRAINED
    entry = export_release(args.run / "checkpoint.pt", folder, args.note)
    print(f"wrote {folder / entry['file']} ({entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}...)")


def build_parser() -> argparse.ArgumentParser:
    """The parser for both subcommands."""
    parser = argparse.ArgumentParser(prog="python -m dcgan_utils", description="Train a DCGAN, or sample from one.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a DCGAN", description="Train a DCGAN; writes OUT/checkpoint.pt, "
                           "OUT/samples.png and OUT/history.json.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--overwrite", action="store_true", help="replace the run in OUT (without it, a folder that "
                       "holds a run is refused)")
    add_config_arguments(train)
    train.set_defaults(handler=_train, command_parser=train)
    sample = sub.add_parser("sample", help="write samples from a checkpoint",
                            description="Write N generated images as a PNG grid (.png) or a uint8 (N, C, H, W) array (.npy).")
    sample.add_argument("checkpoint", help="checkpoint.pt written by `train`")
    sample.add_argument("--num", type=int, default=64, help="number of images (default: 64)")
    sample.add_argument("--out", required=True, help="output file: .png or .npy")
    sample.add_argument("--seed", type=int, default=0, help="seed of the noise (default: 0)")
    sample.add_argument("--device", default="auto", help="device (default: auto)")
    sample.set_defaults(handler=_sample, command_parser=sample)
    export = sub.add_parser("export", help="export a finished run as a release checkpoint",
                            description="Write RUN/checkpoint.pt's release checkpoint (weights, noise, history, grids) "
                            "into the release folder and record it with its sha256 in registry.json.")
    export.add_argument("run", type=Path, help="a run folder holding checkpoint.pt")
    export.add_argument("--note", default="", help="how and where it was trained, for the registry")
    export.add_argument("--folder", type=Path, help="release folder (default: the package's dcgan_utils/pretrained)")
    export.set_defaults(handler=_export, command_parser=export)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of `python -m dcgan_utils`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.handler(args.command_parser, args)
    except TrainingInterrupted as stop:
        print(f"{parser.prog} {args.command}: {stop}", file=sys.stderr)
        sys.exit(EXIT_CODES.get(stop.signal_name, 130))
    except Exception as err:
        try:
            known = _user_errors()
        except Exception:  # the engine itself does not import (a broken install): the original error says why
            raise err from None
        if not isinstance(err, known):
            raise
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)


def _user_errors() -> tuple[type[Exception], ...]:
    """The errors a command reports in one line, without a traceback (imported only when one is raised)."""
    from dcgan_utils.engine.checkpoint import CheckpointError, OutputNotWritableError
    from dcgan_utils.engine.data import DatasetNotFoundError
    from dcgan_utils.engine.training import NonFiniteLossError, OutOfMemoryError

    return (DatasetNotFoundError, CheckpointError, OutputNotWritableError, FileNotFoundError, NonFiniteLossError,
            OutOfMemoryError, RunLockedError, ValueError)


if __name__ == "__main__":
    main()
