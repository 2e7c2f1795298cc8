"""Notebook 06's MNIST table: every remedy of dcgan_utils.course.remedies, the same generator steps, two seeds;
writes dcgan_utils/pretrained/remedies_mnist.json (what the notebook loads) and prints the rows.

    python benchmarks/remedies.py                    # 2,000 steps per run, seeds 0 and 1 (about 55 min on 2 cores)
    python benchmarks/remedies.py --steps 20 --out /tmp/r.json   # a smoke run
    python benchmarks/remedies.py --only R1          # measure one remedy again; the other rows are kept
    python benchmarks/remedies.py --only plain --out /tmp/r.json   # /tmp/r.json: a copy of the shipped file
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dcgan_utils.course.remedies import MNIST_STEPS, REMEDIES, RESULTS, mnist_row
from dcgan_utils.engine.checkpoint import sha256
from dcgan_utils.engine.data import load_dataset, to_model_range
from dcgan_utils.engine.device import machine_summary
from dcgan_utils.evaluation.metrics import FrechetReference, mnist_classifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--steps", type=int, default=MNIST_STEPS, help="generator steps per run")
parser.add_argument("--seeds", type=int, default=2, help="seeds 0 .. N-1 per remedy")
parser.add_argument("--samples", type=int, default=5000, help="generated digits measured per run")
parser.add_argument("--out", default=str(Path(__file__).parents[1] / "dcgan_utils" / "pretrained" / RESULTS))
parser.add_argument("--only", action="append", choices=list(REMEDIES), help="measure only this remedy (repeatable) "
                    "and replace its rows in --out, keeping the others")
args = parser.parse_args()


classifier = mnist_classifier()
data = load_dataset("mnist")
real = FrechetReference(classifier, to_model_range(load_dataset("mnist", train=False).images))  # features once
# each row measured here names its machine and judge (the rows of 2026-11-30 lack them): --only keeps other rows
judge = {"machine": machine_summary(), "judge": Path(classifier.path).name, "judge_sha256": sha256(classifier.path)}
kept, before = [], {}
if args.only:
    before = json.loads(Path(args.out).read_text())
    if (before["steps"], before["samples"]) != (args.steps, args.samples):
        parser.error(f"{args.out} holds runs of {before['steps']} steps and {before['samples']} samples: measure "
                     f"with the same --steps and --samples, or all remedies")
    kept = [r for r in before["rows"] if r["remedy"] not in args.only]
machine = before.get("machine", judge["machine"])  # where the file's first rows were measured (--only keeps it)
rows = []
for name in args.only or REMEDIES:
    for seed in range(args.seeds):
        row = mnist_row(name, seed, data, real, args.steps, args.samples)
        print(" | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
        rows.append({**row, **judge})
        ordered = sorted(kept + rows, key=lambda r: (list(REMEDIES).index(r["remedy"]), r["seed"]))
        Path(args.out).write_text(json.dumps({"machine": machine, "steps": args.steps, "samples": args.samples,
                                              "rows": ordered}, indent=1) + "\n")
print(f"wrote {args.out}")
