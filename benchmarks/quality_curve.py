"""MNIST quality per minute: one run, evaluated after 1, 2, 5, 10 and 20 minutes of its own training time.

    python benchmarks/quality_curve.py                          # the package's defaults, no epoch cap
    python benchmarks/quality_curve.py --minutes 1 2 5 --seed 1 # other marks, any TrainConfig flag
    python benchmarks/quality_curve.py --batch-size 32 --label "batch 32" --seed 1

Rows are added to --out (default dcgan_utils/pretrained/quality_curve_mnist.json, which notebook 04 plots), replacing
the rows of the same label and seed and keeping the others.

The run trains to the first mark (TrainConfig.max_minutes), is evaluated, then resumes from its checkpoint with the next
mark as its budget (the budget counts the run's own training time across sessions, and a resumed run continues bit
for bit on a CPU, so the marks lie on one run). Each row: steps, epochs, confident share and smallest class by the
package's MNIST classifier, and the Frechet distance in its features to real test digits, on --samples generated
digits; real test digits are scored by the same classifier once, beside the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from dcgan_utils.cli import add_config_arguments, config_from_args
from dcgan_utils.course.quality_curve import RESULTS, add_rows, results_header
from dcgan_utils.engine.data import load_dataset, to_model_range
from dcgan_utils.engine.device import machine_summary
from dcgan_utils.engine.run_state import generate
from dcgan_utils.engine.training import train_gan
from dcgan_utils.evaluation.metrics import FrechetReference, class_coverage, mnist_classifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--minutes", type=float, nargs="+", default=[1, 2, 5, 10, 20], help="marks, minutes of training")
parser.add_argument("--samples", type=int, default=10000, help="generated images evaluated at each mark")
parser.add_argument("--label", default="defaults", help="the recipe's name in the table and the figure")
parser.add_argument("--out", default=str(Path(__file__).parents[1] / "dcgan_utils" / "pretrained" / RESULTS),
                    help="JSON file the rows are added to")
add_config_arguments(parser)
parser.set_defaults(epochs=0)  # no epoch cap: the marks decide
args = parser.parse_args()

print(f"CPU: {machine_summary()}")
classifier = mnist_classifier()  # the judge: loaded before any budget starts
judge = classifier.path  # the file mnist_classifier() read (the package's, unless one was trained here)
test = to_model_range(load_dataset("mnist", train=False).images)
real = class_coverage(classifier, test)
reference = FrechetReference(classifier, test)  # the test digits' features once, for every point
header = results_header(judge, args.samples, real)
print(f"judge: {judge.name}, sha256 {header['judge_sha256']}")
print(f"real test digits: confident {real['confident']:.1%}, smallest class {real['min_class_share']:.1%}")
data = load_dataset("mnist", image_size=args.image_size)
base = config_from_args(parser, args)
print("| run | minutes | steps | epochs | confident >= 0.9 | smallest class | Frechet distance | wall s |")
out = Path(args.out)
rows = []
with tempfile.TemporaryDirectory() as folder:
    start = time.perf_counter()
    for i, minutes in enumerate(sorted(args.minutes)):
        config = dataclasses.replace(base, max_minutes=minutes)
        state = train_gan(config, data, folder, resume=i > 0, progress=False)
        z = torch.randn(args.samples, config.latent_dim, generator=torch.Generator().manual_seed(1))
        fake = torch.cat([generate(state, chunk) for chunk in z.split(1000)]).cpu()
        cov = class_coverage(classifier, fake)
        fd = reference.distance(fake)
        epochs = state.step * config.batch_size / len(data)
        print(f"| {args.label}, seed {config.seed} | {state.train_seconds / 60:.1f} | {state.step} | {epochs:.1f} | "
              f"{cov['confident']:.1%} | {cov['min_class_share']:.1%} | {fd:.1f} | "
              f"{time.perf_counter() - start:.0f} |", flush=True)
        rows.append({"label": args.label, "seed": config.seed, "minutes": state.train_seconds / 60,
                     "steps": state.step, "epochs": epochs, "confident": cov["confident"],
                     "min_class_share": cov["min_class_share"], "frechet": fd})
        add_rows(out, header, rows)
print(f"wrote {out}")
