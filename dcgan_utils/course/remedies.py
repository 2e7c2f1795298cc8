"""Notebook 06's remedies, each as the settings it changes, on the ring of 8 Gaussians and on MNIST.

Each remedy is one entry: its name, its source, and the fields it changes from a baseline, for the toy trainer
(ToyConfig) and for the image trainer (TrainConfig). Notebook 06 and benchmarks/remedies.py read the same table, so
the numbers shipped in dcgan_utils/pretrained/remedies_mnist.json are those of the settings the notebook shows.
"""

from __future__ import annotations

import dataclasses
import json
import time
from importlib import resources
from typing import TYPE_CHECKING

import torch

from dcgan_utils.course.toy import ToyConfig
from dcgan_utils.engine.config import TrainConfig

if TYPE_CHECKING:  # the metrics (torchmetrics) are imported only when an MNIST row is measured
    from dcgan_utils.evaluation.metrics import FrechetReference

# name: (source, ToyConfig changes, TrainConfig changes)
REMEDIES: dict[str, tuple[str, dict, dict]] = {
    "plain": ("the baseline, no remedy", {}, {}),
    "spectral norm": ("Miyato et al. 2018: every layer of D divided by its largest singular value",
                      {"d_norm": "spectral"}, {"d_norm": "spectral"}),
    "R1": ("Mescheder et al. 2018: gamma/2 E||grad D(x)||^2 on real data; gamma 1 here (our choice, not tuned); "
           "images: no normalisation in D, since BatchNorm would mix the batch into each image's gradient",
           {"r1": 1.0}, {"r1_penalty": 1.0, "d_norm": "none"}),
    "WGAN-GP": ("Gulrajani et al. 2017: Wasserstein loss, penalty 10 on interpolates, 5 critic steps, Adam 1e-4, "
                "betas (0, 0.9), no BatchNorm in the critic",
                {"loss": "wasserstein", "gp": 10.0, "d_steps": 5, "lr_g": 1e-4, "lr_d": 1e-4, "betas": (0.0, 0.9)},
                {"loss": "wasserstein", "gradient_penalty": 10.0, "d_norm": "layer", "d_steps": 5, "lr": 1e-4,
                 "d_lr": 1e-4, "beta1": 0.0, "beta2": 0.9}),
    "minibatch std": ("Karras et al. 2018: D also sees how much a group of 4 samples varies",
                      {"minibatch_std": True}, {"minibatch_std": True}),
    "two time-scales": ("Heusel et al. 2017 (TTUR); the rates of Zhang et al. 2019 (SAGAN): D 4e-4, G 1e-4",
                        {"lr_g": 1e-4, "lr_d": 4e-4}, {"lr": 1e-4, "d_lr": 4e-4}),
}

# the ring's baseline: notebook 01's collapsing run (D's rate 50 times G's, 5 D steps per round)
RING_BASELINE = ToyConfig(problem="ring", d_steps=5, lr_g=2e-4, lr_d=1e-2)
# MNIST's baseline: the package's defaults (width 32, batch 128, Adam 2e-4, beta1 0.5), stopped at a step budget
MNIST_STEPS = 2000
RESULTS = "remedies_mnist.json"  # in dcgan_utils/pretrained/, written by benchmarks/remedies.py


def ring_config(name: str, steps: int, seed: int) -> ToyConfig:
    """The ring run of one remedy: the baseline with the remedy's toy settings."""
    return dataclasses.replace(RING_BASELINE, steps=steps, seed=seed, **REMEDIES[name][1])


def mnist_config(name: str, seed: int, steps: int = MNIST_STEPS, **where) -> TrainConfig:
    """The MNIST run of one remedy: the defaults with the remedy's settings, `steps` generator steps (no time budget:
    every remedy gets the same steps on any machine)."""
    return TrainConfig(dataset="mnist", max_steps=steps, epochs=0, max_minutes=0, seed=seed, **where,
                       **REMEDIES[name][2])


def mnist_row(name: str, seed: int, data, real: FrechetReference, steps: int = MNIST_STEPS, samples: int = 5000,
              **where) -> dict:
    """Train one remedy on MNIST for `steps` generator steps and measure `samples` generated digits with the
    classifier of `real` (a FrechetReference of real test digits in [-1, 1], whose features are computed once and
    shared by every row): its confident share and smallest class, the Frechet distance to all of `real`'s digits,
    precision and recall against as many of them as samples."""
    from dcgan_utils.engine.run_state import generate
    from dcgan_utils.engine.training import train_gan
    from dcgan_utils.evaluation.metrics import class_coverage
    from dcgan_utils.evaluation.precision_recall import precision_recall

    start = time.perf_counter()
    state = train_gan(mnist_config(name, seed, steps, **where), data, progress=False)
    seconds = time.perf_counter() - start
    z = torch.randn(samples, state.config.latent_dim, generator=torch.Generator().manual_seed(1000 + seed))
    fake = torch.cat([generate(state, chunk) for chunk in z.split(1000)]).cpu()
    coverage = class_coverage(real.model, fake)
    pick = torch.randperm(len(real.images), generator=torch.Generator().manual_seed(seed))[:samples]
    return {"remedy": name, "seed": seed, "steps": state.step, "seconds": seconds,
            "confident": coverage["confident"], "smallest_class": coverage["min_class_share"],
            "frechet": real.distance(fake), **precision_recall(real.model, real.images[pick], fake)}


def load_results() -> dict:
    """The shipped MNIST results: {"machine", "steps", "samples", "rows": [...]}, as benchmarks/remedies.py wrote
    them (a row: remedy, seed, steps, seconds, confident, smallest_class, frechet, precision, recall, f_score)."""
    return json.loads(resources.files("dcgan_utils").joinpath("pretrained", RESULTS).read_text())


def mean_by_remedy(rows: list[dict], keys: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The mean of each key over a remedy's seeds, and the range (min, max) under key + "_range"."""
    out = {}
    for name in dict.fromkeys(r["remedy"] for r in rows):
        mine = [r for r in rows if r["remedy"] == name]
        out[name] = {}
        for key in keys:
            values = torch.tensor([float(r[key]) for r in mine])
            out[name][key] = values.mean().item()
            out[name][key + "_range"] = (values.min().item(), values.max().item())
    return out


def check_mnist_reading(rows: list[dict]) -> None:
    """What notebook 06's reading of the shipped MNIST table says, each on both seeds (seeds 0 and 1); an
    AssertionError names the first claim the rows do not bear out (a retrain on another machine may not)."""
    by = {(r["remedy"], r["seed"]): r for r in rows}

    def rows_of(name):
        return [by[name, seed] for seed in (0, 1)]

    def above(key, high, low):  # every row of `high` above every row of `low` on key
        return min(r[key] for r in high) > max(r[key] for r in low)

    wgan, plain, r1 = rows_of("WGAN-GP"), rows_of("plain"), rows_of("R1")
    rest = [r for r in rows if r["remedy"] != "WGAN-GP"]
    below_r1 = [r for r in rest if r["remedy"] != "R1"]  # neither WGAN-GP nor R1
    claims = {
        "WGAN-GP: the lowest Frechet distance": above("frechet", rest, wgan),
        "WGAN-GP: the highest recall": above("recall", wgan, rest),
        "WGAN-GP: the largest smallest class": above("smallest_class", wgan, rest),
        "WGAN-GP: lower precision than plain": above("precision", plain, wgan),
        "R1: next on Frechet distance": above("frechet", below_r1, r1),
        "R1: next on smallest class": above("smallest_class", r1, below_r1),
        "R1: below plain on confident share, precision and recall": all(
            above(key, plain, r1) for key in ("confident", "precision", "recall")),
        "minibatch std: smallest class below plain's": above("smallest_class", plain, rows_of("minibatch std")),
        "minibatch std: Frechet distance above plain's": above("frechet", rows_of("minibatch std"), plain),
        "two time-scales: smallest class under 0.5%": max(r["smallest_class"] for r in rows_of("two time-scales")) < 0.005,
    }
    for name in ("spectral norm", "two time-scales"):  # worse than plain on three measures, better on precision
        slow = rows_of(name)
        claims[f"{name}: below plain on confident share and recall, above on Frechet distance and precision"] = (
            above("confident", plain, slow) and above("recall", plain, slow) and above("frechet", slow, plain)
            and above("precision", slow, plain))
    failed = [claim for claim, holds in claims.items() if not holds]
    assert not failed, f"the MNIST table does not bear out: {'; '.join(failed)}"

