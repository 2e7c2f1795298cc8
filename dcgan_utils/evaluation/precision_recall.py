"""Precision and recall of a generator (Kynkaanniemi et al. 2019, "Improved precision and recall metric for assessing
generative models"), measured in the course classifier's features and computed by torch-fidelity.

Each set of feature vectors stands for a manifold: the union of balls around its points, each ball reaching that
point's k-th nearest neighbour in its own set. Precision is the share of generated points inside the real manifold
(are the samples like real ones?); recall is the share of real points inside the generated manifold (does G cover
the data?). One number such as a Frechet distance mixes the two; a collapsed G has high precision and low recall, a
noisy one the reverse.

Recall has a known blind spot: generated points far from the data have huge balls, which can swallow every real point
(recall 1 from samples nowhere near any digit). Density and coverage (Naeem et al. 2020, "Reliable fidelity and
diversity metrics for generative models") use the real points' balls only: coverage is the share of real points whose
ball holds at least one generated point, density the mean number of real balls a generated point lies in, over k.
"""

from __future__ import annotations

import torch
from torch_fidelity.metric_prc import prc_features_to_metric

from dcgan_utils.evaluation.metrics import EVAL_BATCH, ImageClassifier


def _check_features(real: torch.Tensor, fake: torch.Tensor) -> None:
    """Refuse anything but two (N, F) feature matrices with the same F."""
    if fake.dim() != 2 or real.dim() != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(f"need two (N, F) feature matrices with the same F, got {tuple(real.shape)} (real) and "
                         f"{tuple(fake.shape)} (generated)")


def precision_recall_of_features(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Precision, recall and their harmonic mean (f_score) of generated feature vectors (N, F) against real ones
    (M, F), with balls reaching each point's k-th nearest neighbour (Kynkaanniemi et al.: k = 3). Real first, as in
    every measure of the package (torch-fidelity takes the generated set first; that is handled here)."""
    _check_features(real, fake)
    if not 1 <= k < min(len(fake), len(real)):
        raise ValueError(f"k must be in [1, {min(len(fake), len(real)) - 1}] (fewer than the smaller set), got {k}")
    scores = prc_features_to_metric(fake.double().cpu(), real.double().cpu(), prc_neighborhood=k, verbose=False,
                                    save_cpu_ram=False, prc_batch_size=10000)
    return {"precision": scores["precision"], "recall": scores["recall"], "f_score": scores["f_score"]}


@torch.no_grad()
def precision_recall(model: ImageClassifier, real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Precision and recall of generated images against real ones (both in [-1, 1]) in the classifier's 128
    features. Use as many real as generated images: each manifold's balls shrink as its set grows."""
    model.eval()
    features = [torch.cat([model.features(batch) for batch in images.split(EVAL_BATCH)]) for images in (real, fake)]
    return precision_recall_of_features(*features, k=k)


def density_coverage_of_features(real: torch.Tensor, fake: torch.Tensor, k: int = 5, chunk: int = 1024
                                 ) -> dict[str, float]:
    """Density and coverage (Naeem et al. 2020; their k = 5) of generated feature vectors (N, F) against real ones
    (M, F) (the paper names them the other way round): each real point's ball reaches its k-th nearest real neighbour
    (strictly inside counts, as in their `prdc` package). Density is about 1 for a generator like the data (it is not
    capped at 1), coverage at most 1."""
    _check_features(real, fake)
    if not 1 <= k < len(real):
        raise ValueError(f"k must be in [1, {len(real) - 1}] (fewer than the real points), got {k}")
    if not len(fake):
        raise ValueError("need at least one generated feature vector, got none")
    real, fake = real.double().cpu(), fake.double().cpu()
    inside, covered = 0, 0
    for block in real.split(chunk):  # a block of real points: their radii, then which generated points they hold
        radius = torch.cdist(block, real).kthvalue(k + 1, dim=1).values[:, None]  # the +1 skips the point itself
        holds = torch.cdist(block, fake) < radius
        inside += holds.sum().item()
        covered += holds.any(dim=1).sum().item()
    return {"density": inside / (k * len(fake)), "coverage": covered / len(real)}
