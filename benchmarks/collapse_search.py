r"""Looking for mode collapse on MNIST: train one setting for a few seeds and print what the collapse meters read.

    python benchmarks/collapse_search.py --max-steps 1000 --seeds 0 --lr 2e-3      # any TrainConfig flag
    python benchmarks/collapse_search.py --max-steps 1000 --seeds 0,1 --no-g-batchnorm
    python benchmarks/collapse_search.py --max-steps 1000 --lr 2e-3 --seeds 0,1,2 --freeze 1000 --max-minutes 0
    python benchmarks/collapse_search.py --max-steps 1000 --lr 2e-3 --seeds 0,1,2 --freeze 1000 --max-minutes 0 \
        --extra-layer --out /tmp/collapse_mnist_extra_layer.json      # benchmarks/README.md's record, not shipped
    python benchmarks/collapse_search.py --extra-layer --max-steps 14000 --epochs 0 --max-minutes 0 --seeds 0,1,2 \
        --freeze 3000 --map-lr 2e-3 --z-map-only --shipped-starts --out dcgan_utils/pretrained/collapse_long_mnist.json

--freeze N: after the run, continue it for N steps with D's learning rate unchanged and with D frozen, each with all
of G training and with only a linear map of the noise in front of G's frozen weights (dcgan_utils.course.collapse),
and write every row to dcgan_utils/pretrained/collapse_mnist.json (--out names another file). --shipped-starts
continues the package's long starts (collapse.shipped_start) instead of training them; --export-starts writes the
starts it trained into the package as such (without G's Adam moments, which the z-map copies do not use).

Collapse proper (issue #17): G maps many noise vectors to a few convincing images: at least half of the samples in
at most two classes by the package's MNIST classifier, a diversity close to that of one class of real digits, and
confident samples; a healthy run of the same length has every class at >= 5%. --seeds overrides --seed. The table
measured this way, and what it did not find, are in benchmarks/README.md ("Looking for mode collapse").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from dcgan_utils.cli import add_config_arguments, config_from_args
from dcgan_utils.course import collapse
from dcgan_utils.course.quality_curve import results_header
from dcgan_utils.engine import run_state
from dcgan_utils.engine.checkpoint import g_frozen_start, load_checkpoint, restore
from dcgan_utils.engine.data import load_dataset, to_model_range
from dcgan_utils.engine.device import cpu_model
from dcgan_utils.engine.runs import PRETRAINED, export_release
from dcgan_utils.engine.training import train_gan
from dcgan_utils.evaluation.diagnostics import diversity
from dcgan_utils.evaluation.metrics import class_coverage, mnist_classifier

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seeds", default="0", help="comma-separated seeds, one run each")
parser.add_argument("--samples", type=int, default=2000, help="generated digits classified per run")
parser.add_argument("--freeze", type=int, default=0, metavar="N",
                    help="continue each run for N steps with D trained and with D frozen; write the results (--out)")
parser.add_argument("--map-lr", type=float, default=None,
                    help="--freeze: the z-map copies' learning rate (default: --lr, the start's)")
parser.add_argument("--z-map-only", action="store_true", help="--freeze: continue with the two z-map copies only")
parser.add_argument("--shipped-starts", action="store_true", help="--freeze: continue the package's verified start "
                    "for each seed (registered for exactly these settings) instead of training it")
parser.add_argument("--export-starts", action="store_true", help="--freeze: write each trained start into the "
                    "package (dcgan_utils/pretrained/, registered with its sha256) as a start for the z-map copies")
parser.add_argument("--out", default=None, help="--freeze's output file (default: the shipped results notebook 05 "
                    "loads, collapse_long_mnist.json with --shipped-starts, else collapse_mnist.json)")
parser.add_argument("--no-g-batchnorm", action="store_true", help="G without its BatchNorm layers (Radford et al. "
                    "credit BatchNorm with keeping G from collapsing to one point; not an engine setting)")
add_config_arguments(parser)
args = parser.parse_args()
if args.out is not None and not args.freeze:
    parser.error("--out names --freeze's output file: add --freeze N, or drop --out")
out = Path(args.out or PRETRAINED / (collapse.LONG_RESULTS if args.shipped_starts else collapse.RESULTS)).expanduser()
if (args.map_lr is not None or args.z_map_only or args.shipped_starts or args.export_starts) and not args.freeze:
    parser.error("--map-lr, --z-map-only, --shipped-starts and --export-starts act on --freeze's copies: add --freeze N")
if args.map_lr is not None and not args.map_lr > 0:
    parser.error(f"--map-lr must be > 0 (the noise map's learning rate), not {args.map_lr}")
if args.shipped_starts and args.export_starts:
    parser.error("--export-starts writes the starts this run trains; --shipped-starts trains none: choose one")
if args.no_g_batchnorm and (args.shipped_starts or args.export_starts):
    parser.error("--no-g-batchnorm changes G outside TrainConfig, so its runs cannot use or register shipped starts")
if args.export_starts and args.max_minutes:
    parser.error("--export-starts registers starts of exactly --max-steps: add --max-minutes 0 (no time budget)")
starts = {}  # --shipped-starts: seed -> its verified file, found now, not after loading the data
for seed in (int(s) for s in args.seeds.split(",")) if args.shipped_starts else ():
    args.seed = seed
    if config_from_args(parser, args).run_key() != collapse.long_start_config(seed).run_key():
        parser.error("--shipped-starts continues the long starts: use --extra-layer --max-steps 14000 --epochs 0 "
                     "--max-minutes 0 and no other training setting")
    try:
        starts[seed] = collapse.shipped_start(seed)
    except FileNotFoundError as err:
        parser.error(str(err))
if args.freeze and not out.parent.is_dir():  # found out now, not after the runs
    parser.error(f"--out {args.out}: no folder {out.parent} to write it in; create it or name another")
if args.no_g_batchnorm:
    built = run_state.Generator

    def without_batchnorm(*a, **k):
        g = built(*a, **k)
        g.net = nn.Sequential(*[nn.Identity() if isinstance(m, nn.BatchNorm2d) else m for m in g.net])
        return g

    run_state.Generator = without_batchnorm

classifier = mnist_classifier()
data = load_dataset("mnist")
test = load_dataset("mnist", train=False)
real = to_model_range(test.images)
one_class = {c: diversity(real[test.labels == c][:64]) for c in range(10)}
print(f"{cpu_model()}, torch {torch.__version__}")
mixed = real[torch.randperm(len(real), generator=torch.Generator().manual_seed(0))[:64]]
print(f"real test digits: diversity of 64 {diversity(mixed):.3f}; one class's "
      f"{min(one_class.values()):.3f} (digit {min(one_class, key=one_class.get)}) to {max(one_class.values()):.3f} "
      f"(digit {max(one_class, key=one_class.get)})")
print("| seed | steps | s | confident >= 0.9 | smallest class | top two classes | diversity of 64 | shares, largest first |")
if args.freeze:
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        args.seed = seed
        config = config_from_args(parser, args)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            arms = tuple(a for a in collapse.ARMS if a.startswith("z-map") or not args.z_map_only)
            states = collapse.frozen_d_runs(config, data, folder, args.freeze, arms, args.map_lr, starts.get(seed))
            if args.export_starts:
                entry = export_release(Path(folder) / "start" / "checkpoint.pt", keep=g_frozen_start,
                                       note=f"notebook 05's long start, seed {seed}: {config.max_steps:,} steps on "
                                            f"{cpu_model()} on {time.strftime('%Y-%m-%d')} "
                                            f"({torch.get_num_threads()} threads, torch {torch.__version__}); G's "
                                            f"Adam moments and all grids but the last dropped (g_frozen_start)")
                print(f"exported {entry['file']} ({entry['bytes']:,} bytes, sha256 {entry['sha256'][:12]}...)")
            first = run_state.build_state(config)  # the common start, read back from its checkpoint
            restore(first, load_checkpoint(Path(folder) / "start" / "checkpoint.pt"), resume=False)
            for arm, state in (("start", first), *states.items()):
                row = {"seed": seed, "arm": arm, **collapse.meters(state, classifier, args.samples, seed)}
                rows.append(row)
                print(f"| {seed} {arm} | {row['step']} | {time.perf_counter() - start:.0f} | {row['confident']:.0%} | "
                      f"{row['smallest']:.1%} | {row['top_two']:.0%} | {row['diversity']:.3f} | "
                      f"{' '.join(f'{s:.2f}' for s in row['shares'])} |", flush=True)
    defaults = dataclasses.asdict(type(config)())
    settings = {k: v for k, v in dataclasses.asdict(config).items() if v != defaults[k] and k not in ("seed", "data_dir")}
    header = results_header(classifier.path, args.samples, class_coverage(classifier, real))
    header["settings"] = {**settings, "more_steps": args.freeze}
    if args.map_lr is not None:
        header["settings"]["map_lr"] = args.map_lr
    if args.shipped_starts:
        header["settings"]["starts"] = "shipped"
    header["real"].update(diversity_mixed=diversity(mixed), diversity_one_class=[min(one_class.values()),
                                                                                  max(one_class.values())])
    out.write_text(json.dumps({**header, "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")
    raise SystemExit
for seed in (int(s) for s in args.seeds.split(",")):
    args.seed = seed
    config = config_from_args(parser, args)
    start = time.perf_counter()
    state = train_gan(config, data, progress=False)
    seconds = time.perf_counter() - start
    z = torch.randn(args.samples, config.latent_dim, generator=torch.Generator().manual_seed(1000 + seed))
    fake = torch.cat([run_state.generate(state, chunk) for chunk in z.split(1000)]).cpu()
    coverage = class_coverage(classifier, fake)
    shares = sorted(coverage["class_shares"], reverse=True)
    print(f"| {seed} | {state.step} | {seconds:.0f} | {coverage['confident']:.0%} | {coverage['min_class_share']:.1%} | "
          f"{shares[0] + shares[1]:.0%} | {diversity(fake[:64]):.3f} | {' '.join(f'{s:.2f}' for s in shares)} |",
          flush=True)
