"""Exercise checkers: they accept right answers written independently, and reject the usual wrong ones saying why."""

from __future__ import annotations

import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan_utils.course import exercises, stability_checks


def _r1_by_hand(D, x):
    """R1 by the chain rule for the checkers' D = Linear -> Tanh -> Linear, without autograd over x."""
    first, last = D[0], D[2]
    h = first(x)
    dtanh = 1 - torch.tanh(h) ** 2  # (N, 16)
    grad = (dtanh * last.weight) @ first.weight  # (N, d): d D / d x per point
    return grad.pow(2).sum(1).mean()


def _precision_by_loops(real, fake, k):
    radii = [sorted((real[i] - real[j]).norm().item() for j in range(len(real)))[k] for i in range(len(real))]
    inside = [any((f - real[i]).norm().item() <= radii[i] for i in range(len(real))) for f in fake]
    return sum(inside) / len(inside)


def _not_attempted(*args):
    raise NotImplementedError


def _slerp_by_angles(a, b, t):
    """Slerp written from the unit vectors and the angle between them, row by row."""
    ua, ub = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((ua * ub).sum(-1, keepdim=True))
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


RIGHT = {
    exercises.check_optimal_discriminator: lambda a, b: 1 / (1 + b / a),
    exercises.check_jsd: lambda p, q: (F.kl_div(((p + q) / 2).log(), p, reduction="sum")
                                    + F.kl_div(((p + q) / 2).log(), q, reduction="sum")) / 2,
    exercises.check_game_value: lambda j: 2 * j - math.log(4),
    exercises.check_simultaneous_step: lambda x, y, lr: (x - lr * y, y + lr * x),
    exercises.check_non_saturating_loss: lambda l: F.binary_cross_entropy_with_logits(l, torch.ones_like(l)),
    exercises.check_generator_gradients: lambda l: (-torch.sigmoid(l), -torch.sigmoid(-l)),
    exercises.check_discriminator_loss: lambda r, f, t: (F.binary_cross_entropy_with_logits(r, torch.full_like(r, t))
                                                      + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f))),
    exercises.check_bce: lambda l, t: F.binary_cross_entropy_with_logits(l, torch.full_like(l, t)),
    exercises.check_conv_output_size: lambda n, k, s, p: math.floor((n + 2 * p - k) / s) + 1,
    exercises.check_conv_transpose_output_size: lambda n, k, s, p: s * (n - 1) + k - 2 * p,
    exercises.check_generator_block: lambda i, o: nn.Sequential(nn.ConvTranspose2d(i, o, 4, 2, 1, bias=False),
                                                             nn.BatchNorm2d(o), nn.ReLU(True)),
    exercises.check_parameter_count: lambda i, o, k: o * (i * k * k + 2),
    exercises.check_to_model_range: lambda x: x.double() * 2 / 255 - 1,
    exercises.check_slerp: lambda a, b, t: _slerp_by_angles(a, b, t),
    exercises.check_class_shares: lambda y, n: torch.stack([(y == k).double().mean() for k in range(n)]),
    exercises.check_nearest_neighbour: lambda q, r: ((q[:, None] - r[None]) ** 2).flatten(2).sum(-1).argmin(1),
    exercises.check_dataset_memory: lambda n, c, s, b: n * c * s * s * b / 1024 / 1024,
    exercises.check_amdahl: lambda f, s: s / (s * (1 - f) + f),
    exercises.check_images_per_second: lambda b, s, ms: 1000 * b * s / ms,
    stability_checks.check_dirac_r1_step: lambda t, p, lr, g: (t - lr * p / (1 + torch.exp(t * p)),
                                                                p + lr * (t / (1 + torch.exp(t * p)) - g * p)),
    stability_checks.check_r1_penalty: _r1_by_hand,
    stability_checks.check_precision: _precision_by_loops,
}

WRONG = {  # a mistake learners make, and a word the message must contain
    exercises.check_optimal_discriminator: (lambda a, b: b / (a + b), "off by"),
    exercises.check_jsd: (lambda p, q: 0.5 * (p * (p / ((p + q) / 2)).log()).sum()
                       + 0.5 * (q * (q / ((p + q) / 2)).log()).sum(), "not finite"),  # forgets 0 log 0 = 0
    exercises.check_game_value: (lambda j: math.log(4) + 2 * j, "off by"),
    exercises.check_simultaneous_step: (lambda x, y, lr: (x - lr * y, y + lr * (x - lr * y)), "off by"),  # alternating
    exercises.check_non_saturating_loss: (lambda l: -torch.log(torch.sigmoid(l)).mean(), "not finite"),
    exercises.check_generator_gradients: (lambda l: (torch.sigmoid(l) - 1, -torch.sigmoid(l)), "off by"),  # swapped
    exercises.check_discriminator_loss: (lambda r, f, t: F.softplus(-r).mean() + F.softplus(f).mean(), "off by"),
    exercises.check_bce: (lambda l, t: -(t * torch.log(torch.sigmoid(l))
                                      + (1 - t) * torch.log(1 - torch.sigmoid(l))).mean(), "not finite"),
    exercises.check_conv_output_size: (lambda n, k, s, p: (n + 2 * p - k) / s + 1, "off by"),  # no floor
    exercises.check_conv_transpose_output_size: (lambda n, k, s, p: n * s, "off by"),  # ignores kernel and padding
    exercises.check_generator_block: (lambda i, o: nn.Sequential(nn.ConvTranspose2d(i, o, 4, 2, 1), nn.BatchNorm2d(o),
                                                              nn.ReLU()), "off by"),  # a bias BatchNorm cancels
    exercises.check_parameter_count: (lambda i, o, k: i * o * k * k, "off by"),  # forgets BatchNorm
    exercises.check_to_model_range: (lambda x: x.double() / 255, "off by"),  # [0, 1], not Tanh's [-1, 1]
    exercises.check_slerp: (lambda a, b, t: (1 - t) * a + t * b, "off by"),  # a straight line through the inside
    exercises.check_class_shares: (lambda y, n: torch.bincount(y) / len(y), "shape"),  # absent top classes vanish
    exercises.check_nearest_neighbour: (lambda q, r: torch.cdist(q.flatten(1), r.flatten(1)).argmin(0), "shape"),
    exercises.check_dataset_memory: (lambda n, c, s, b: n * c * s * s * b / 1e6, "off by"),  # MB, not MiB
    exercises.check_amdahl: (lambda f, s: f * s + (1 - f), "off by"),  # averages speed-ups instead of times
    exercises.check_images_per_second: (lambda b, s, ms: b * s / ms, "off by"),  # milliseconds taken as seconds
    stability_checks.check_dirac_r1_step: (lambda t, p, lr, g: (t - lr * p / (1 + torch.exp(t * p)),  # + penalty
                                                                 p + lr * (t / (1 + torch.exp(t * p)) + g * p)), "off by"),
    stability_checks.check_r1_penalty: (lambda D, x: torch.autograd.grad(D(x.requires_grad_()).sum(), x)[0]
                                        .pow(2).sum(1).mean(), "create_graph"),  # a penalty with no weight gradient
    stability_checks.check_precision: (lambda r, f, k: (torch.cdist(f, r) <= torch.cdist(r, r).kthvalue(k, dim=1)
                                                        .values).any(1).double().mean(), "off by"),  # counts itself
}


@pytest.mark.parametrize("check", list(RIGHT), ids=lambda c: c.__name__)
def test_a_right_answer_written_another_way_passes(check, capsys):
    assert check(RIGHT[check], strict=True) is True
    assert "correct" in capsys.readouterr().out
    assert check(RIGHT[check]) is None and "correct" in capsys.readouterr().out  # a learner's cell: the print only


@pytest.mark.parametrize("check", list(WRONG), ids=lambda c: c.__name__)
def test_a_typical_mistake_fails_and_the_message_says_what_differs(check, capsys):
    wrong, word = WRONG[check]
    assert check(wrong) is None  # nothing for a notebook cell to display under the printed verdict
    out = capsys.readouterr().out
    assert "not yet right" in out and word in out and "With inputs" in out
    with pytest.raises(AssertionError, match="not yet right"):
        check(wrong, strict=True)


FIXED_CASES = {exercises.check_game_value, exercises.check_conv_output_size, exercises.check_conv_transpose_output_size,
               exercises.check_generator_block, exercises.check_parameter_count, exercises.check_dataset_memory,
               exercises.check_amdahl, exercises.check_images_per_second}  # no random input in their cases


@pytest.mark.parametrize("check", list(RIGHT), ids=lambda c: c.__name__)
def test_a_verdict_says_random_only_where_the_cases_are_random(check, capsys):
    """The verdict once said 'random and extreme' for every check, fixed values included (#21)."""
    check(RIGHT[check])
    verdict = capsys.readouterr().out
    assert ("random" in verdict) == (check not in FIXED_CASES), verdict


@pytest.mark.parametrize("check", list(RIGHT), ids=lambda c: c.__name__)
def test_each_verdict_names_its_exercise_and_what_it_tried(check, capsys):
    """Found by mutmut: a verdict's name, or its list of cases, could be blanked without any test noticing."""
    check(RIGHT[check])
    name, _, rest = capsys.readouterr().out.partition(": correct on ")
    assert name.split(" (")[0] == check.__name__.removeprefix("check_")  # generator_block adds what it compares
    precision = r"exactly" if check in WHOLE_NUMBERS else r"to 1e-06"
    assert re.fullmatch(rf"\d+ cases: [^X]{{10,}} \({precision}\)\.\n", rest), rest  # "XX" is mutmut's blanking mark


WHOLE_NUMBERS = {exercises.check_conv_output_size, exercises.check_conv_transpose_output_size,
                 exercises.check_generator_block, exercises.check_parameter_count}  # sizes and counts


@pytest.mark.parametrize("check", sorted(WHOLE_NUMBERS - {exercises.check_generator_block}, key=lambda c: c.__name__),
                         ids=lambda c: c.__name__)
def test_a_size_or_count_must_be_exact(check, capsys):
    """Their verdicts said "(to 1e-06)" for whole-number answers, and an answer off by less than that passed."""
    nudged = lambda *args: RIGHT[check](*args) + 1e-7  # noqa: E731
    check(nudged)
    assert "not yet right" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"off by 1e-07 \(got \d+\.0000001, expected \d+\)"):
        check(nudged, strict=True)


def test_the_size_checks_name_the_input_widths_they_try(capsys):
    """conv_output_size once said 'inputs 1 to 64 wide', but a Conv2d case needs a full window: its 1-wide cases drop."""
    for transposed, check in ((False, exercises.check_conv_output_size),
                              (True, exercises.check_conv_transpose_output_size)):
        widths = [args[0] for args, _ in exercises._size_cases(transposed)]
        check(RIGHT[check])
        assert f"inputs {min(widths)} to {max(widths)} wide" in capsys.readouterr().out


@pytest.mark.parametrize("check", list(RIGHT), ids=lambda c: c.__name__)
def test_a_stub_is_reported_as_not_attempted(check, capsys):
    assert check(_not_attempted) is None
    assert "not attempted yet" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="not attempted"):
        check(_not_attempted, strict=True)


def test_an_error_in_the_learners_code_is_reported_not_raised(capsys):
    assert exercises.check_bce(lambda l, t: l.reshape(3, -1), strict=False) is None
    assert "raised RuntimeError" in capsys.readouterr().out


def test_a_wrong_shape_is_named(capsys):
    assert exercises.check_non_saturating_loss(lambda l: F.softplus(-l)) is None  # forgot the mean
    assert "shape" in capsys.readouterr().out


def test_a_small_error_beyond_the_tolerance_is_caught():
    with pytest.raises(AssertionError, match="off by 1e-05"):
        exercises.check_game_value(lambda j: 2 * j - math.log(4) + 1e-5, strict=True)
    assert exercises.check_game_value(lambda j: 2 * j - math.log(4) + 1e-9, strict=True) is True


def test_a_bce_right_only_for_hard_labels_fails_on_a_smoothed_one(capsys):
    """The usual shortcut: pick softplus(-l) for label 1 and softplus(l) for label 0; wrong for 0.9 (smoothing)."""
    hard_only = lambda l, t: torch.where(torch.tensor(t >= 0.5), F.softplus(-l), F.softplus(l)).mean()  # noqa: E731
    assert exercises.check_bce(hard_only) is None
    assert "not yet right" in capsys.readouterr().out


def test_precision_with_zero_distances_dropped_fails_where_real_points_repeat(capsys):
    """Excluding a point from its own neighbours by dropping zero distances also drops its twins: right on distinct
    points, wrong (radii too large) where the real set holds copies."""
    def drops_zeros(real, fake, k):
        d = torch.cdist(real, real, compute_mode="donot_use_mm_for_euclid_dist")  # exact zeros on the diagonal
        d[d == 0] = float("inf")
        radii = d.kthvalue(k, dim=1).values
        return (torch.cdist(fake, real) <= radii).any(1).double().mean()

    distinct = stability_checks._random((80, 3), 1), stability_checks._random((40, 3), 2)
    assert torch.isclose(drops_zeros(*distinct, 3), torch.tensor(_precision_by_loops(*distinct, 3), dtype=torch.float64))
    assert stability_checks.check_precision(drops_zeros) is None
    assert "not yet right" in capsys.readouterr().out
