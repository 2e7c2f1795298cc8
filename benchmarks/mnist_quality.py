"""Target 1: MNIST on this CPU, from scratch, 5 minutes of wall clock; prints time, coverage and Frechet distance.

    python benchmarks/mnist_quality.py                      # the package's defaults (what `train` uses)
    python benchmarks/mnist_quality.py --g-width 32 --ema 0 # any TrainConfig flag, to measure one change
    python benchmarks/mnist_quality.py --drs 80             # also a row of the same run's samples kept by
                                                            # discriminator rejection sampling (gamma: 80th percentile)

Each row is also added to --out (default dcgan_utils/pretrained/methods_mnist.json, which notebook 04 prints),
replacing the rows of the same label and seed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from dcgan_utils.cli import add_config_arguments, config_from_args
from dcgan_utils.course.quality_curve import METHODS, add_rows, results_header
from dcgan_utils.engine.data import load_dataset, to_model_range
from dcgan_utils.engine.device import machine_summary
from dcgan_utils.evaluation.metrics import FrechetReference, class_coverage, mnist_classifier
from dcgan_utils.evaluation.rejection import rejection_sample
from dcgan_utils.engine.run_state import generate
from dcgan_utils.engine.training import train_gan

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--label", default="defaults", help="row name in the printed table")
parser.add_argument("--budget", type=float, default=5.0, help="minutes of wall clock, data loading included")
parser.add_argument("--samples", type=int, default=10000, help="generated images to evaluate")
parser.add_argument("--drs", type=float, default=None, metavar="PERCENTILE",
                    help="also evaluate samples kept by discriminator rejection sampling, gamma at this percentile")
parser.add_argument("--out", default=str(Path(__file__).parents[1] / "dcgan_utils" / "pretrained" / METHODS),
                    help="JSON file the rows are added to")
add_config_arguments(parser)
args = parser.parse_args()

print(f"CPU: {machine_summary()}")
classifier = mnist_classifier()  # the judge: loaded before the timed budget starts
judge = classifier.path  # the file mnist_classifier() read (the package's, unless one was trained here)
test = to_model_range(load_dataset("mnist", train=False).images)
reference = FrechetReference(classifier, test)  # the test digits' features once, for every row
start = time.perf_counter()
data = load_dataset("mnist", image_size=args.image_size)
args.max_minutes = args.budget - (time.perf_counter() - start) / 60  # training gets what loading left
config = config_from_args(parser, args)
state = train_gan(config, data, progress=False)
wall = time.perf_counter() - start
z = torch.randn(args.samples, config.latent_dim, generator=torch.Generator().manual_seed(1))
fake = torch.cat([generate(state, chunk) for chunk in z.split(1000)]).cpu()
real_cov = class_coverage(classifier, test)
epochs = state.step * config.batch_size / len(data)
print(f"precision {state.precision}, {state.step} steps ({epochs:.1f} epochs) in {wall:.0f} s wall clock")
print(f"real test digits: confident {real_cov['confident']:.1%}, smallest class {real_cov['min_class_share']:.1%}")
print("| run | steps | epochs | wall s | confident >= 0.9 | smallest class | Frechet distance |")
samples = [(args.label, fake, None)]
if args.drs is not None:  # the same run, its samples filtered at sampling time (not counted in the budget)
    kept, share = rejection_sample(state, args.samples, percentile=args.drs)
    samples.append((f"{args.label}, rejection sampling (gamma: {args.drs:g}th percentile)", kept, share))
rows = []
for label, images, share in samples:
    cov, fd = class_coverage(classifier, images), reference.distance(images)
    note = "" if share is None else f" ({share:.0%} of draws kept)"
    print(f"| {label}{note} | {state.step} | {epochs:.1f} | {wall:.0f} | {cov['confident']:.1%} | "
          f"{cov['min_class_share']:.1%} | {fd:.2f} |")
    rows.append({"label": label, "seed": config.seed, "steps": state.step, "epochs": epochs, "wall_s": wall,
                 "confident": cov["confident"], "min_class_share": cov["min_class_share"], "frechet": fd,
                 **({} if share is None else {"kept_share": share})})
add_rows(args.out, results_header(judge, args.samples, real_cov), rows)
print(f"wrote {args.out}")
