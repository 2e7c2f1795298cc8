"""The cases each exercise check tries: what its verdict says it tried, reproducible, in float64.

A checker compares the learner's function with a reference on its cases; a case that lost what made it useful (two
"random" vectors that are the same vector, a probability vector that no longer sums to 1, no target 0 left) weakens
the check without any wrong answer getting through in the other tests. These tests record the inputs a checker
hands to a right answer and check them against the verdict's words (found by mutmut, issue #22).
"""

from __future__ import annotations

import math
import re

import pytest
import torch

from dcgan_utils.course import exercises, stability_checks
from test_exercises import RIGHT


def tried(check) -> list[tuple]:
    """The argument tuples `check` passes to a right answer, in order (the check must pass)."""
    calls = []

    def spy(*args):
        calls.append(args)
        return RIGHT[check](*args)

    assert check(spy, strict=True) is True
    return calls


def tensors(args: tuple) -> list[torch.Tensor]:
    return [a for a in args if torch.is_tensor(a)]


def differ(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape != b.shape or not torch.equal(a, b)


@pytest.mark.parametrize("check", list(RIGHT), ids=lambda c: c.__name__)
def test_every_case_is_the_same_on_every_run_and_float_inputs_are_float64(check, capsys):
    """A case drawn from the global random state would differ between runs; float32 inputs would make a right
    float64 answer miss the 1e-6 tolerance."""
    first, second = tried(check), tried(check)
    assert len(first) == len(second)
    for a, b in zip(first, second):
        for x, y in zip(tensors(a), tensors(b)):
            assert torch.equal(x, y)
            assert not x.is_floating_point() or x.dtype == torch.float64, x.dtype


def test_optimal_discriminator_tries_two_random_density_vectors_then_zero_and_tiny_ones():
    (a, b), (tiny, other) = tried(exercises.check_optimal_discriminator)
    assert a.shape == b.shape == (1000,) and (a >= 0).all() and (b >= 0).all() and differ(a, b)
    assert ((tiny == 0) & (other > 0)).any() and ((other == 0) & (tiny > 0)).any()  # one density zero, not both
    assert tiny[tiny > 0].min() < 1e-250  # near the smallest float64
    assert ((tiny > 0) & (tiny < 1e-6) & (other > 0) & (other < 1e-6)).any()  # both tiny at one x


def test_jsd_tries_random_disjoint_and_equal_probability_vectors():
    (p, q), (d1, d2), (s1, s2) = tried(exercises.check_jsd)
    for v in (p, q, d1, d2, s1, s2):
        assert (v >= 0).all() and math.isclose(v.sum().item(), 1.0, abs_tol=1e-12)
    assert differ(p, q) and (p > 0).all() and (q > 0).all()
    assert not ((d1 > 0) & (d2 > 0)).any()  # disjoint supports
    assert torch.equal(s1, s2)


def test_game_value_tries_the_jsd_values_its_verdict_names():
    assert [float(v) for (v,) in tried(exercises.check_game_value)] == pytest.approx([0, 0.1, 0.5, math.log(2)])


def test_simultaneous_step_tries_its_three_learning_rates_on_distinct_points():
    cases = tried(exercises.check_simultaneous_step)
    assert [lr for _, _, lr in cases] == [0.1, 0.5, 1e-3]
    points = [v for x, y, _ in cases for v in (x, y)]
    assert all(differ(u, v) for i, u in enumerate(points) for v in points[i + 1:])


@pytest.mark.parametrize("check", [exercises.check_non_saturating_loss, exercises.check_generator_gradients],
                         ids=lambda c: c.__name__)
def test_the_loss_checks_try_random_logits_then_minus_1000_to_1000(check):
    (random,), (extreme,) = tried(check)
    assert len(random) >= 100 and random.std() > 1
    assert extreme.min() == -1000 and extreme.max() == 1000 and (extreme == 0).any()


def test_discriminator_loss_tries_both_real_labels_and_mirrored_extreme_logits():
    cases = tried(exercises.check_discriminator_loss)
    assert [label for _, _, label in cases] == [1.0, 0.9, 1.0, 0.9]
    real, fake, _ = cases[2]
    assert real.max() == 1000 and torch.equal(fake, -real)  # D sure of the real image and of the fake one, and wrong
    assert differ(cases[0][0], cases[0][1])


def test_bce_tries_targets_0_09_and_1_on_random_and_extreme_logits():
    cases = tried(exercises.check_bce)
    assert [t for _, t in cases] == [0.0, 0.9, 1.0] * 2
    assert cases[3][0].abs().max() == 1000


@pytest.mark.parametrize("transposed", [False, True])
def test_the_size_checks_try_exactly_the_cases_a_layer_accepts(transposed):
    """Conv2d needs n + 2p >= k (one full window at least): (2, 4, 1, 1) is exactly one; (1, 4, 1, 1) is too small."""
    check = exercises.check_conv_transpose_output_size if transposed else exercises.check_conv_output_size
    cases = tried(check)
    expected = [c for c in exercises.SIZE_CASES if transposed or c[0] + 2 * c[3] >= c[1]]
    assert cases == expected
    assert ((2, 4, 1, 1) in cases) and (((1, 4, 1, 1) in cases) == transposed)
    assert {s for _, _, s, _ in cases} == {1, 2, 3}


def test_generator_block_tries_the_channel_pairs_its_verdict_names():
    assert tried(exercises.check_generator_block) == [(8, 4), (512, 256), (3, 3)]


def test_parameter_count_tries_the_layers_its_verdict_names(capsys):
    assert tried(exercises.check_parameter_count) == list(exercises.PARAMETER_LAYERS)
    assert "layers 100 -> 512 (kernel 4), 64 -> 3 (kernel 4), 1 -> 1 (kernel 1), 256 -> 128 (kernel 3)" in \
        capsys.readouterr().out


def test_to_model_range_tries_every_pixel_value_once_and_a_batch_of_mnist_images():
    (every,), (batch,) = tried(exercises.check_to_model_range)
    assert every.dtype == batch.dtype == torch.uint8
    assert sorted(every.tolist()) == list(range(256))
    assert batch.shape[1:] == (1, 28, 28) and batch.min() == 0 and batch.max() == 255


def test_slerp_tries_its_fractions_between_two_different_vectors_and_on_rows():
    cases = tried(exercises.check_slerp)
    assert [t for _, _, t in cases] == [0.0, 0.3, 0.5, 1.0, 0.25]
    assert differ(cases[0][0], cases[0][1]) and differ(cases[-1][0], cases[-1][1]) and cases[-1][0].dim() == 2


def test_class_shares_tries_all_classes_a_collapsed_generator_and_one_class():
    (labels, n), (collapsed, n2), (one, n3) = tried(exercises.check_class_shares)
    assert n == n2 == 10 and sorted(set(labels.tolist())) == list(range(10))
    assert set(collapsed.tolist()) == {1, 7}  # two digits of ten
    assert set(one.tolist()) == {0} and n3 == 2  # the last class absent: its share must still be there, 0


def test_nearest_neighbour_tries_random_queries_and_near_copies_of_references():
    (queries, refs), (copies, refs2) = tried(exercises.check_nearest_neighbour)
    assert torch.equal(refs, refs2) and not any(torch.equal(q, r) for q in queries for r in refs)
    distance = torch.cdist(copies.flatten(1), refs.flatten(1))
    assert (distance.min(1).values < 0.01).all() and len(set(distance.argmin(1).tolist())) == len(copies)


def test_dataset_memory_tries_real_datasets_shapes():
    """CIFAR-10's 50,000 training images of 3x32x32 (uint8 and float32), MNIST's 60,000 of 1x28x28, CelebA's
    202,599 at 64x64 in fp16: the sizes the notebook talks about."""
    assert tried(exercises.check_dataset_memory) == [(50000, 3, 32, 1), (50000, 3, 32, 4), (60000, 1, 28, 1),
                                                     (202599, 3, 64, 2)]


def test_amdahl_tries_fractions_from_0_to_1_and_the_speed_ups_its_verdict_names():
    cases = tried(exercises.check_amdahl)
    assert [s for _, s in cases] == [1.0, 1.5, 4.0]
    fractions = cases[0][0].tolist()
    assert fractions[0] == 0 and fractions[-1] == 1 and fractions == sorted(set(fractions)) and len(fractions) == 5


def test_the_dirac_step_tries_four_distinct_pairs_with_gamma_0_among_them():
    cases = tried(stability_checks.check_dirac_r1_step)
    pairs = [(lr, gamma) for _, _, lr, gamma in cases]
    assert pairs == [(0.1, 1.0), (0.5, 0.3), (1e-3, 10.0), (0.2, 0.0)]
    starts = [v for t, p, _, _ in cases for v in (t, p)]
    assert all(differ(u, v) for i, u in enumerate(starts) for v in starts[i + 1:])
    # far from the equilibrium too, where the step's f'(theta psi) = 1 / (1 + e^(theta psi)) is far from linear
    assert all(v.abs().max() > 3 for v in starts)


def test_the_r1_check_tries_points_in_1_2_and_8_dimensions():
    cases = tried(stability_checks.check_r1_penalty)
    assert sorted(x.shape[1] for _, x in cases) == [1, 2, 8]
    assert all(D[0].in_features == x.shape[1] for D, x in cases)


def test_the_r1_check_refuses_a_penalty_whose_weight_gradient_is_zero(capsys):
    """A value that requires grad but carries none back to D's weights regularises nothing."""
    def detached_plus_zero(D, x):
        return RIGHT[stability_checks.check_r1_penalty](D, x).detach() + 0 * sum(p.sum() for p in D.parameters())

    assert stability_checks.check_r1_penalty(detached_plus_zero) is None
    assert re.search(r"it raised ValueError: the penalty has no gradient for D's weights: pass create_graph=True to "
                     r"autograd\.grad\.$", capsys.readouterr().out.strip())


def test_the_precision_check_tries_its_ks_copies_and_repeated_points():
    cases = tried(stability_checks.check_precision)
    assert [k for _, _, k in cases] == [3, 1, 5, 3, 1]
    shifts = [(fake.mean() - real.mean()).item() for real, fake, _ in cases[:3]]
    assert 0.3 < shifts[0] < 1 and abs(shifts[1]) < 0.3 and shifts[2] > 1.5  # overlapping, on and off the real cloud
    reals = [real for real, _, _ in cases]
    assert all(differ(u, v[: len(u)]) for i, u in enumerate(reals[:3]) for v in reals[i + 1:])  # a cloud per case
    real, copies, _ = cases[3]
    assert all(any(torch.equal(c, r) for r in real) for c in copies)
    doubled = cases[4][0]
    assert torch.equal(doubled[: len(doubled) // 2], doubled[len(doubled) // 2:])
