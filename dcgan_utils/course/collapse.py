"""Mode collapse provoked on MNIST: G trained on against a frozen D.

Goodfellow et al. (2014, section 6) warn that G "must not be trained too much without updating D", or it sends too
many noise vectors to the same image (their "Helvetica scenario"). `frozen_d_runs` does exactly that: one run
trains as usual for `start_steps`, then copies of it continue for `more_steps`. Two differ in one setting, D's
learning rate: unchanged ("D trained") or 0 ("D frozen"). Two more ("z-map, ...") do the same with G's weights frozen
and only a linear map of the noise in front of G trained (`NoiseMap`): G can then draw only what it could draw at the
split (digits and non-digits), where with all of its weights training it can move to images that only a frozen D
takes for real. `meters` reads each with the instruments of notebook 05: the MNIST classifier's class shares and
confident share, and the diversity of 64 samples.

The definitions (issue #17): collapse is at least half of the samples in at most two classes and a diversity no
higher than one real class's; healthy is every class at 5% or more. The meters alone would also call a G that never
learned anything "collapse" (it draws one blur for every z): read them against the start, which had learned.
`benchmarks/collapse_search.py --freeze` runs three seeds and writes RESULTS; notebook 05 loads them and reruns one.

From a short start (RESULTS: 1,000 steps at G's rate 2e-3), the z-map copy with D trained fell below 5% on its
rarest class. The long starts (`long_start_config`: 14,000 steps of the extra-layer DCGAN at the paper's rates, about
9 minutes per seed on a fast 2-core CPU) are shipped, one per seed (`shipped_start`), so that notebook 05 runs only
the z-map copies from them (`frozen_d_runs(..., start=...)`, the map at 2e-3); their results are LONG_RESULTS.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dcgan_utils.engine.checkpoint import CheckpointError, is_release, keeps_g_state, load_checkpoint
from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.models import Generator
from dcgan_utils.engine.run_state import GANState, generate
from dcgan_utils.engine.runs import PRETRAINED, find_pretrained, read_registry
from dcgan_utils.engine.training import train_gan
from dcgan_utils.evaluation.diagnostics import diversity
from dcgan_utils.evaluation.metrics import ImageClassifier, class_coverage

RESULTS = "collapse_mnist.json"  # in dcgan_utils/pretrained/, written by benchmarks/collapse_search.py --freeze
LONG_RESULTS = "collapse_long_mnist.json"  # the same from the long starts (collapse_search.py --shipped-starts)
LONG_START_STEPS = 14_000  # the long starts' length
ARMS = ("D trained", "D frozen", "z-map, D trained", "z-map, D frozen")  # the continuations, in training order
COLLAPSED_TOP_TWO = 0.5  # collapse: at least this share of the samples in the two largest classes
HEALTHY_SMALLEST = 0.05  # healthy: every class at least this share


class NoiseMap(nn.Module):
    """A trained generator with its weights frozen, behind a trainable linear map of the noise:
    x = G(sqrt(d) * normalise(A z + b)), with d = latent_dim, A starting as the identity and b at 0.

    The map's output is put on the sphere of radius sqrt(d), near which G's training noise concentrates (for d = 100,
    |z| has mean about 10 and standard deviation about 0.7), so G gets inputs of the size it was trained on; its
    BatchNorm stays in inference mode (running statistics) whatever train() is told. G's weights stay as they are:
    what can change is which z gets which of the images G can draw.
    """

    def __init__(self, generator: Generator):
        super().__init__()
        if generator.num_classes:
            raise ValueError("NoiseMap takes an unconditional generator (num_classes=0)")
        self.latent_dim = d = generator.latent_dim
        self.generator = generator.eval().requires_grad_(False)
        self.mapping = nn.Linear(d, d).to(next(generator.parameters()).device)
        nn.init.eye_(self.mapping.weight)
        nn.init.zeros_(self.mapping.bias)

    def train(self, mode: bool = True) -> "NoiseMap":
        """Only the map follows train()/eval(); the frozen generator stays in inference mode."""
        self.training = mode
        self.mapping.train(mode)
        return self

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Images from noise (N, latent_dim) or (N, latent_dim, 1, 1); labels must be None (unconditional)."""
        z = z.flatten(1)
        return self.generator(math.sqrt(self.latent_dim) * F.normalize(self.mapping(z), dim=1), labels)


def train_noise_only(state: GANState) -> None:
    """train_gan's `prepare` hook: G's weights stop training and a NoiseMap in front of G trains in their place, with
    G's learning rate and betas (a fresh Adam). For unconditional runs without EMA."""
    if state.ema is not None:
        raise ValueError("train_noise_only needs a run without EMA (config.ema = 0)")
    state.G = state.g_run = NoiseMap(state.G)
    state.opt_g = torch.optim.Adam(state.G.mapping.parameters(), lr=state.config.lr,
                                   betas=(state.config.beta1, state.config.beta2))


def frozen_d_runs(config: TrainConfig, data: ImageData, folder: str | Path, more_steps: int,
                  arms: tuple[str, ...] = ARMS, map_lr: float | None = None, start: str | Path | None = None
                  ) -> dict[str, GANState]:
    """Train `config` (its max_steps: the common start) into folder/start, or copy `start` there (a checkpoint of it
    already trained), then continue it for exactly more_steps (no time budget) in each of `arms`: D's learning rate
    as before or 0 (D frozen), with all of G training at config.lr (a copy of the start in folder/arm) or only a
    NoiseMap in front of G, trained at map_lr (default config.lr; read from folder/start, nothing written);
    {arm: final state}, in `arms`' order."""
    if not config.max_steps:
        raise ValueError("frozen_d_runs needs config.max_steps, the common start's length")
    if config.ema or config.num_classes:
        raise ValueError("frozen_d_runs needs an unconditional run without EMA (num_classes=0, ema=0): its z-map arms "
                         "train a NoiseMap in front of G, and an EMA copy of G would not show it")
    if not arms or (unknown := [a for a in arms if a not in ARMS]):
        raise ValueError(f"unknown or no arms {list(arms)}: choose one or more of {list(ARMS)}")
    if map_lr is not None and not map_lr > 0:
        raise ValueError(f"map_lr must be > 0 (the noise map's learning rate), not {map_lr}")
    folder = Path(folder)
    if start is None:
        train_gan(config, data, folder / "start", progress=False, overwrite=True)
    else:
        _copy_start(Path(start), config, arms, folder / "start" / "checkpoint.pt")
    states = {}
    for arm in arms:
        d_lr = 0.0 if arm.endswith("D frozen") else config.d_lr
        longer = dataclasses.replace(config, max_steps=config.max_steps + more_steps, d_lr=d_lr, epochs=0,
                                     max_minutes=0.0)
        if arm.startswith("z-map"):
            longer = dataclasses.replace(longer, lr=config.lr if map_lr is None else map_lr)
            states[arm] = train_gan(longer, data, folder / "start", resume=True, progress=False, write=False,
                                    prepare=train_noise_only)
            continue
        shutil.rmtree(folder / arm, ignore_errors=True)
        shutil.copytree(folder / "start", folder / arm)
        states[arm] = train_gan(longer, data, folder / arm, resume=True, progress=False)
    return states


def _copy_start(start: Path, config: TrainConfig, arms: tuple[str, ...], target: Path) -> None:
    """Check that `start` is a finished training checkpoint of `config` that `arms` can continue; copy it to target."""
    payload = load_checkpoint(start)
    saved = TrainConfig.from_dict(payload["config"])
    if is_release(payload):
        raise CheckpointError(f"{start} is a release (weights only, no optimiser or random-number states): pass a "
                              f"training checkpoint of the start, or a start written by checkpoint.g_frozen_start")
    if saved.run_key() != config.run_key():
        raise ValueError(f"{start} is a checkpoint of run {saved.run_key()}, not of {config.run_key()}: pass the "
                         f"config it was trained with")
    if payload["step"] != config.max_steps:
        raise ValueError(f"{start} stopped at step {payload['step']:,} of {config.max_steps:,}: finish it (train_gan "
                         f"with resume=True) or pass a finished one")
    if not keeps_g_state(payload) and any(not a.startswith("z-map") for a in arms):
        raise ValueError(f"{start} keeps no optimiser state for G's weights (a start for the z-map copies): continue "
                         f"it with the z-map arms only, or pass a full training checkpoint")
    target.parent.mkdir(parents=True, exist_ok=True)
    if not (target.exists() and target.samefile(start)):
        shutil.copyfile(start, target)


def long_start_config(seed: int) -> TrainConfig:
    """The long starts' settings: the DCGAN with one more layer per network (`extra_layer`) at the paper's rates,
    14,000 steps (about 30 epochs of MNIST), for seed `seed`."""
    return TrainConfig(extra_layer=True, max_steps=LONG_START_STEPS, epochs=0, max_minutes=0.0, seed=seed)


def shipped_start(seed: int) -> Path:
    """The package's long start for `seed` (trained once, shipped with its sha256, verified here): a start for the
    z-map copies, whose training would take about 9 minutes per seed on a fast 2-core CPU."""
    config = long_start_config(seed)
    path = find_pretrained(config)
    entry = read_registry().get(config.run_key()) if path is None else None
    if entry is not None:
        raise FileNotFoundError(f"the long start for seed {seed} is registered but missing from {PRETRAINED}: restore "
                                f"it with `git checkout -- {entry['file']}` there")
    if path is None:
        raise FileNotFoundError(
            f"no shipped long start for seed {seed}: the shipped seeds are 0, 1 and 2. To train and register one "
            f"(about 9 minutes on a fast 2-core CPU): python benchmarks/collapse_search.py --extra-layer --max-steps 14000 "
            f"--epochs 0 --max-minutes 0 --seeds {seed} --freeze 3000 --map-lr 2e-3 --z-map-only --export-starts "
            f"--out /tmp/collapse_long_{seed}.json")
    return path


@torch.no_grad()
def draw(state: GANState, samples: int = 2000, seed: int = 0) -> torch.Tensor:
    """`samples` images from noise seeded by 1000 + seed, on the CPU (the meters' samples; their first 64 are the
    ones whose diversity is measured)."""
    z = torch.randn(samples, state.config.latent_dim, generator=torch.Generator().manual_seed(1000 + seed))
    return torch.cat([generate(state, chunk) for chunk in z.split(1000)]).cpu()


def meters(state: GANState, classifier: ImageClassifier, samples: int = 2000, seed: int = 0) -> dict:
    """The collapse meters on draw(state, samples, seed): confident share, class shares (largest first) and those
    classes, the two largest classes' share, the smallest class's, and the diversity of the first 64."""
    fake = draw(state, samples, seed)
    coverage = class_coverage(classifier, fake)
    classes = sorted(range(len(coverage["class_shares"])), key=lambda c: -coverage["class_shares"][c])
    shares = [coverage["class_shares"][c] for c in classes]
    return {"step": state.step, "confident": coverage["confident"], "shares": shares, "classes": classes,
            "top_two": shares[0] + shares[1], "smallest": shares[-1], "diversity": diversity(fake[:64])}


def verdict(row: dict, one_class_diversity: float) -> str:
    """What the numbers support, by the definitions above: "collapse" (top two classes >= 50% and a diversity at most
    one_class_diversity, the most varied real class's), "healthy" or "neither"."""
    if row["top_two"] >= COLLAPSED_TOP_TWO and row["diversity"] <= one_class_diversity:
        return "collapse"
    return "healthy" if row["smallest"] >= HEALTHY_SMALLEST else "neither"


def load_collapse(name: str = RESULTS) -> dict:
    """Shipped results (RESULTS or LONG_RESULTS): {"machine", "judge", "judge_sha256", "settings", "real", "rows":
    [{seed, arm, step, confident, shares, top_two, smallest, diversity}, ...]} (the start's rows have arm "start")."""
    return json.loads(resources.files("dcgan_utils").joinpath("pretrained", name).read_text())


def collapse_table(results: dict) -> str:
    """The shipped rows as a text table, one line per seed and arm, with each continuation's verdict."""
    most_varied = results["real"]["diversity_one_class"][1]
    width = max(len(r["arm"]) for r in results["rows"])  # the longest run name sets the column
    lines = [f"{'seed':>4}  {'run':<{width}} {'step':>6}  {'confident':>9}  {'top two':>7}  {'smallest':>8}  "
             f"{'diversity':>9}  verdict"]
    for r in results["rows"]:
        said = verdict(r, most_varied) if r["arm"] != "start" else ""
        lines.append(f"{r['seed']:>4}  {r['arm']:<{width}} {r['step']:>6}  {r['confident']:>9.0%}  "
                     f"{r['top_two']:>7.0%}  {r['smallest']:>8.1%}  {r['diversity']:>9.3f}  {said}")
    return "\n".join(lines)
