"""Command line: `python -m dcgan_utils train ...` and `python -m dcgan_utils sample CHECKPOINT ...`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import save_image

from dcgan_utils import distributed
from dcgan_utils.checkpoint import CheckpointError, OutputNotWritableError, load_checkpoint
from dcgan_utils.config import TrainConfig, field_help
from dcgan_utils.data import DatasetNotFoundError, to_uint8
from dcgan_utils.interrupt import EXIT_CODES, TrainingInterrupted
from dcgan_utils.state import build_state, generate, restore
from dcgan_utils.training import NonFiniteLossError, OutOfMemoryError, train_gan


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One --flag per TrainConfig field, with the field's comment as help and its default."""
    helps = field_help()
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=helps[f.name])
        else:
            kind = {int: int, float: float}.get(type(default), str)
            parser.add_argument(flag, type=kind, default=default, metavar=f.name.upper(),
                                help=f"{helps[f.name]} (default: {default})")


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
    if distributed.launched():  # under torchrun: this process is one rank; rank 0 writes the outputs
        state = distributed.train_distributed(config, out, resume=args.resume)
        if os.environ.get("RANK", "0") != "0":
            return
    else:
        state = train_gan(config, out_dir=out, resume=args.resume)
    samples = generate(state, state.fixed_noise, state.fixed_labels)
    save_image(samples, out / "samples.png", nrow=config.num_classes or 8, normalize=True, value_range=(-1, 1))
    (out / "history.json").write_text(json.dumps({"config": config.to_dict(), **state.history}))
    print(f"{state.step} steps; wrote {out / 'checkpoint.pt'}, {out / 'samples.png'}, {out / 'history.json'}")


def _sample(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    out = Path(args.out)
    if out.suffix not in (".png", ".npy"):
        parser.error(f"--out must end in .png (an image grid) or .npy (a uint8 array), got {out.name!r}")
    if args.num < 1:
        parser.error(f"--num must be at least 1, got {args.num}")
    payload = load_checkpoint(args.checkpoint)
    config = dataclasses.replace(TrainConfig.from_dict(payload["config"]), device=args.device)
    state = build_state(config)
    restore(state, payload)
    z = torch.randn(args.num, config.latent_dim, generator=torch.Generator().manual_seed(args.seed))
    images = torch.cat([generate(state, chunk) for chunk in z.split(500)]).cpu()
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".npy":
        np.save(out, to_uint8(images).numpy())  # (N, C, H, W) uint8
    else:
        save_image(images, out, nrow=int(args.num**0.5) or 1, normalize=True, value_range=(-1, 1))
    print(f"wrote {args.num} samples to {out}")


def build_parser() -> argparse.ArgumentParser:
    """The parser for both subcommands."""
    parser = argparse.ArgumentParser(prog="python -m dcgan_utils", description="Train a DCGAN, or sample from one.")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a DCGAN", description="Train a DCGAN; writes OUT/checkpoint.pt, "
                           "OUT/samples.png and OUT/history.json.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    train.add_argument("--out", required=True, help="output folder")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
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
    except (DatasetNotFoundError, CheckpointError, OutputNotWritableError, FileNotFoundError, NonFiniteLossError,
            OutOfMemoryError, ValueError) as err:
        print(f"{parser.prog} {args.command}: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
