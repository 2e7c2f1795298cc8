"""Mode collapse provoked on MNIST: G trained on against a frozen D.

Goodfellow et al. (2014, section 6) warn that G "must not be trained too much without updating D", or it sends too
many noise vectors to the same image (their "Helvetica scenario"). `frozen_d_runs` does exactly that: one run
trains as usual for `start_steps`, then two copies of it continue for `more_steps` that differ in one setting, D's
learning rate: unchanged ("D trained") or 0 ("D frozen"). `meters` reads each with the instruments of notebook 05:
the MNIST classifier's class shares and confident share, and the diversity of 64 samples.

The definitions (issue #17): collapse is at least half of the samples in at most two classes and a diversity no
higher than one real class's; healthy is every class at 5% or more. The meters alone would also call a G that never
learned anything "collapse" (it draws one blur for every z): read them against the start, which had learned.
`benchmarks/collapse_search.py --freeze` runs three seeds and writes RESULTS; notebook 05 loads them and reruns one.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from importlib import resources
from pathlib import Path

import torch

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData
from dcgan_utils.engine.run_state import GANState, generate
from dcgan_utils.engine.training import train_gan
from dcgan_utils.evaluation.diagnostics import diversity
from dcgan_utils.evaluation.metrics import ImageClassifier, class_coverage

RESULTS = "collapse_mnist.json"  # in dcgan_utils/pretrained/, written by benchmarks/collapse_search.py --freeze
ARMS = ("D trained", "D frozen")  # the two continuations, in the order they are trained and shown
COLLAPSED_TOP_TWO = 0.5  # collapse: at least this share of the samples in the two largest classes
HEALTHY_SMALLEST = 0.05  # healthy: every class at least this share


def frozen_d_runs(config: TrainConfig, data: ImageData, folder: str | Path, more_steps: int
                  ) -> dict[str, GANState]:
    """Train `config` (its max_steps: the common start) into folder/start, then continue a copy of it for more_steps
    with D's learning rate as before and another with D frozen (d_lr = 0); {arm: final state}, in ARMS order."""
    if not config.max_steps:
        raise ValueError("frozen_d_runs needs config.max_steps, the common start's length")
    folder = Path(folder)
    train_gan(config, data, folder / "start", progress=False, overwrite=True)
    states = {}
    for arm, d_lr in zip(ARMS, (config.d_lr, 0.0)):
        shutil.rmtree(folder / arm, ignore_errors=True)
        shutil.copytree(folder / "start", folder / arm)
        longer = dataclasses.replace(config, max_steps=config.max_steps + more_steps, d_lr=d_lr, epochs=0)
        states[arm] = train_gan(longer, data, folder / arm, resume=True, progress=False)
    return states


@torch.no_grad()
def draw(state: GANState, samples: int = 2000, seed: int = 0) -> torch.Tensor:
    """`samples` images from noise seeded by 1000 + seed, on the CPU (the meters' samples; their first 64 are the
    ones whose diversity is measured)."""
    z = torch.randn(samples, state.config.latent_dim, generator=torch.Generator().manual_seed(1000 + seed))
    return torch.cat([generate(state, chunk) for chunk in z.split(1000)]).cpu()


def meters(state: GANState, classifier: ImageClassifier, samples: int = 2000, seed: int = 0) -> dict:
    """The collapse meters on draw(state, samples, seed): confident share, class shares (largest first), the two
    largest classes' share, the smallest class's, and the diversity of the first 64."""
    fake = draw(state, samples, seed)
    coverage = class_coverage(classifier, fake)
    shares = sorted(coverage["class_shares"], reverse=True)
    return {"step": state.step, "confident": coverage["confident"], "shares": shares, "top_two": shares[0] + shares[1],
            "smallest": shares[-1], "diversity": diversity(fake[:64])}


def verdict(row: dict, one_class_diversity: float) -> str:
    """What the numbers support, by the definitions above: "collapse" (top two classes >= 50% and a diversity at most
    one_class_diversity, the most varied real class's), "healthy" or "neither"."""
    if row["top_two"] >= COLLAPSED_TOP_TWO and row["diversity"] <= one_class_diversity:
        return "collapse"
    return "healthy" if row["smallest"] >= HEALTHY_SMALLEST else "neither"


def load_collapse() -> dict:
    """The shipped results: {"machine", "judge", "judge_sha256", "settings", "real", "rows": [{seed, arm, step,
    confident, shares, top_two, smallest, diversity}, ...]} (the start's rows have arm "start")."""
    return json.loads(resources.files("dcgan_utils").joinpath("pretrained", RESULTS).read_text())


def collapse_table(results: dict) -> str:
    """The shipped rows as a text table, one line per seed and arm, with each continuation's verdict."""
    most_varied = results["real"]["diversity_one_class"][1]
    lines = [f"{'seed':>4}  {'run':<10} {'step':>5}  {'confident':>9}  {'top two':>7}  {'smallest':>8}  "
             f"{'diversity':>9}  verdict"]
    for r in results["rows"]:
        lines.append(f"{r['seed']:>4}  {r['arm']:<10} {r['step']:>5}  {r['confident']:>9.0%}  {r['top_two']:>7.0%}  "
                     f"{r['smallest']:>8.1%}  {r['diversity']:>9.3f}  {verdict(r, most_varied) if r['arm'] != 'start' else ''}")
    return "\n".join(lines)
