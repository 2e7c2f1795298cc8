"""Precision and recall (Kynkaanniemi et al. 2019) through torch-fidelity, and density and coverage (Naeem et al.
2020), against hand-computed cases, direct numpy computations, and generators whose answer is known."""

import numpy as np
import pytest
import torch

from dcgan_utils.evaluation.precision_recall import (density_coverage_of_features, precision_recall,
                                                     precision_recall_of_features)
from helpers import tiny_data


def direct(fake: np.ndarray, real: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, written out: a point is inside a set's manifold when it lies within some member's ball."""
    def radii(points):
        d = np.linalg.norm(points[:, None] - points[None], axis=2)
        return np.sort(d, axis=1)[:, k]  # column 0 is the point itself
    def inside(queries, points):
        d = np.linalg.norm(queries[:, None] - points[None], axis=2)
        return (d <= radii(points)[None]).any(axis=1)
    return inside(fake, real).mean(), inside(real, fake).mean()


def test_a_hand_computed_case():
    # real points 0, 1, 2, 3 on a line: with k = 1 every real ball has radius 1
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    # fakes 0.5 and 2.9 fall inside a real ball, 10 and -5 do not: precision 2/4. The fakes' own radii (to their
    # nearest other fake) are 2.4, 7.1, 2.4, 5.5: every real point lies within 2.4 of 0.5 or 2.9: recall 1
    fake = torch.tensor([[0.5], [10.0], [2.9], [-5.0]])
    scores = precision_recall_of_features(real, fake, k=1)
    assert scores["precision"] == 0.5 and scores["recall"] == 1.0
    assert scores["f_score"] == pytest.approx(2 * 0.5 / 1.5)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_equal_to_the_definition_on_random_sets(k):
    g = torch.Generator().manual_seed(k)
    real, fake = torch.randn(300, 6, generator=g), 1.3 * torch.randn(250, 6, generator=g) + 0.4
    scores = precision_recall_of_features(real, fake, k=k)
    precision, recall = direct(fake.double().numpy(), real.double().numpy(), k)
    assert (scores["precision"], scores["recall"]) == pytest.approx((precision, recall), abs=1e-6)
    swapped = precision_recall_of_features(fake, real, k=k)  # the two roles are not symmetric: check which is which
    assert (swapped["precision"], swapped["recall"]) == pytest.approx(
        direct(real.double().numpy(), fake.double().numpy(), k), abs=1e-6)


def test_a_generator_of_part_of_the_data_is_precise_and_a_noisy_one_covers():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 8, generator=g)
    draws = torch.randn(6000, 8, generator=g)
    part = draws[draws[:, 0] > 0.5][:1000]  # only the real distribution's x0 > 0.5 slice: about 31% of it
    noisy = 3 * torch.randn(1000, 8, generator=g)  # everywhere, mostly far from the data
    same = torch.randn(1000, 8, generator=g)
    p_part, p_noisy, p_same = (precision_recall_of_features(real, f) for f in (part, noisy, same))
    assert p_part["precision"] > 0.8 and p_part["recall"] < 0.6
    assert p_noisy["precision"] < 0.1 and p_noisy["recall"] > 0.95
    assert p_same["precision"] > 0.8 and p_same["recall"] > 0.8


def test_images_go_through_the_classifiers_features_and_bad_input_is_refused():
    from dcgan_utils.evaluation.metrics import ImageClassifier

    torch.manual_seed(0)
    model = ImageClassifier(1, 28)
    images = tiny_data(n=64).images.float() / 127.5 - 1
    scores = precision_recall(model, images[:32], images[32:])
    with torch.no_grad():
        expected = precision_recall_of_features(model.features(images[:32]), model.features(images[32:]))
    assert scores == pytest.approx(expected)
    assert precision_recall(model, images, images) == pytest.approx({"precision": 1.0, "recall": 1.0,
                                                                     "f_score": 1.0})
    with pytest.raises(ValueError, match="k must be in"):
        precision_recall_of_features(torch.zeros(3, 2), torch.zeros(3, 2), k=3)
    with pytest.raises(ValueError, match="same F"):
        precision_recall_of_features(torch.zeros(3, 2), torch.zeros(3, 4), k=1)


def direct_density_coverage(fake: np.ndarray, real: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al.'s definitions, written out with real balls only (strictly inside, as their prdc package)."""
    radii = np.sort(np.linalg.norm(real[:, None] - real[None], axis=2), axis=1)[:, k]
    inside = np.linalg.norm(real[:, None] - fake[None], axis=2) < radii[:, None]  # (real, fake)
    return inside.sum() / (k * len(fake)), inside.any(axis=1).mean()


def test_density_and_coverage_a_hand_computed_case():
    # real points 0, 1, 2, 3 on a line, k = 1: balls of radius 1 (strictly inside)
    real = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
    # 0.5 lies in the balls of 0 and 1, 2.9 in those of 2 and 3, 10 in none: density (2 + 2 + 0) / (1 * 3);
    # every real point's ball holds a fake: coverage 1. Recall of the same sets is 1 too; 10 alone covers nothing
    fake = torch.tensor([[0.5], [10.0], [2.9]])
    assert density_coverage_of_features(real, fake, k=1) == pytest.approx({"density": 4 / 3, "coverage": 1.0})
    assert density_coverage_of_features(real, torch.tensor([[10.0], [-5.0]]), k=1) == {"density": 0.0,
                                                                                         "coverage": 0.0}


@pytest.mark.parametrize("k", [1, 5])
def test_density_and_coverage_equal_the_definition_in_blocks(k):
    g = torch.Generator().manual_seed(k)
    real, fake = torch.randn(300, 6, generator=g), 1.3 * torch.randn(250, 6, generator=g) + 0.4
    expected = direct_density_coverage(fake.double().numpy(), real.double().numpy(), k)
    for chunk in (7, 1024):  # blocks of real points that do not divide 300, and one block
        scores = density_coverage_of_features(real, fake, k=k, chunk=chunk)
        assert (scores["density"], scores["coverage"]) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="k must be in"):
        density_coverage_of_features(real[:3], fake, k=3)
    with pytest.raises(ValueError, match="at least one generated"):
        density_coverage_of_features(real, fake[:0], k=k)


def test_coverage_sees_through_recalls_blind_spot():
    # generated points far from the data have large balls that reach every real point: recall near 1 although
    # almost none of them is near the data; coverage, from the real balls only, stays near 0
    g = torch.Generator().manual_seed(0)
    real = torch.randn(1000, 8, generator=g)
    spread = 6 * torch.randn(1000, 8, generator=g)
    same = torch.randn(1000, 8, generator=g)
    assert precision_recall_of_features(real, spread)["recall"] > 0.95
    assert density_coverage_of_features(real, spread)["coverage"] < 0.2
    like = density_coverage_of_features(real, same)
    assert like["coverage"] > 0.9 and 0.8 < like["density"] < 1.2
