"""The training-step exercise: each classic mistake, written the way a learner would write it (PyTorch's own BCE,
not the package's losses), is named by the checker from what the step does."""

import pytest
import torch
import torch.nn.functional as F

from dcgan_utils.course import step_exercise
from dcgan_utils.course.step_exercise import ERRORS, MISTAKES, check_train_step, diagnose


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def learner(flip=False, g_flip=False, minimax=False, zero_d=True, zero_g=True, swap=False, swap_steps=False,
            detach=True, stale=False, leak=False, joint=False, zero_first=False):
    """A learner's step with PyTorch's BCE, with the given mistakes switched on."""
    def step(G, D, opt_g, opt_d, real, z):
        if leak or zero_first:  # the two zero_grads at the top (leak: no detach, and retain_graph to get past the
            opt_g.zero_grad()   # error that gives)
            opt_d.zero_grad()
        fake = G(z)
        old = D(fake) if stale else None
        first, second = (opt_g, opt_d) if swap else (opt_d, opt_g)
        fake_for_d = fake if (leak or not detach) else fake.detach()
        if joint:
            out = D(torch.cat([real, fake_for_d]))
            on_real, on_fake = out[:len(real)], out[len(real):]
        else:
            on_real, on_fake = D(real), D(fake_for_d)
        d_loss = bce(on_real, 0.0 if flip else 1.0) + bce(on_fake, 1.0 if flip else 0.0)
        if zero_d and not (leak or zero_first):
            first.zero_grad()
        d_loss.backward(retain_graph=leak)
        (second if swap_steps else first).step()
        logits = old if stale else D(fake)
        if minimax:
            g_loss = -F.softplus(logits).mean()  # log(1 - D) = -softplus(l)
        else:
            g_loss = bce(logits, 0.0 if g_flip else 1.0)
        if zero_g and not (leak or zero_first):
            second.zero_grad()
        g_loss.backward()
        (first if swap_steps else second).step()
    return step


@pytest.mark.parametrize("mistakes, name", [
    ({"flip": True}, "labels flipped"),
    ({"g_flip": True}, "G's label flipped"),
    ({"minimax": True}, "minimax generator loss"),
    ({"zero_d": False}, "zero_grad missing for D"),
    ({"zero_g": False}, "zero_grad missing for G"),
    ({"zero_d": False, "zero_g": False}, "zero_grad missing for both"),
    ({"swap": True}, "optimisers swapped"),
    ({"swap_steps": True}, "optimisers' step() calls swapped"),
    ({"swap_steps": True, "zero_first": True}, "optimisers' step() calls swapped, zero_grads first"),
    ({"detach": False}, "fakes not detached in D's step"),
    ({"leak": True}, "fakes not detached, and G's zero_grad before D's backward"),
    ({"joint": True}, "D called once on real and fake together"),
    ({"stale": True}, "G's step through D's output from before D's update"),
])
def test_each_classic_mistake_is_named_by_its_effect(mistakes, name):
    verdict, message = diagnose(learner(**mistakes))
    assert verdict == name, message
    assert name in message
    others = [other for other, *_ in (*MISTAKES, *ERRORS) if other not in name]  # not this name, nor part of it
    assert not any(other in message for other in others), message  # named alone, not beside another candidate


def test_a_missing_detach_that_changes_nothing_is_correct():
    """Without detach, D's backward also fills G's gradients; when G's zero_grad comes after it, as in the course's
    step, G's update is the same as with detach: only the wasted backward through G differs, which no parameter
    shows (the error-free variants: G's fakes computed again for G's step, or retain_graph=True)."""
    def again(G, D, opt_g, opt_d, real, z):
        d_loss = bce(D(real), 1.0) + bce(D(G(z)), 0.0)
        opt_d.zero_grad(), d_loss.backward(), opt_d.step()
        g_loss = bce(D(G(z)), 1.0)
        opt_g.zero_grad(), g_loss.backward(), opt_g.step()

    assert diagnose(again)[0] == "correct"
    assert diagnose(learner(detach=False, leak=False, zero_g=True))[0] == "fakes not detached in D's step"


def test_an_error_no_variant_raises_exactly_names_every_variant_of_its_kind():
    """Two variants raise 'modified by an inplace operation', on different networks' weights; a message that
    matches neither exactly is answered with both."""
    from dcgan_utils.course.step_exercise import _diagnose_error

    verdict, message = _diagnose_error(RuntimeError("one of the variables needed for gradient computation has been "
                                                    "modified by an inplace operation: [torch.FloatTensor [1]]"))
    assert verdict == "G's step through D's output from before D's update"
    assert "or optimisers' step() calls swapped" in message


def test_a_right_step_written_differently_is_correct_and_the_check_prints_so(capsys):
    assert diagnose(learner()) == ("correct", diagnose(step_exercise.reference_step)[1])
    assert check_train_step(learner(), strict=True) and "correct" in capsys.readouterr().out


def test_not_attempted_and_unknown_mistakes_are_said_plainly():
    def stub(G, D, opt_g, opt_d, real, z):
        raise NotImplementedError

    def half_rate(G, D, opt_g, opt_d, real, z):  # G's loss halved: no known mistake
        fake = G(z)
        d_loss = bce(D(real), 1.0) + bce(D(fake.detach()), 0.0)
        opt_d.zero_grad(), d_loss.backward(), opt_d.step()
        g_loss = 0.5 * bce(D(fake), 1.0)
        opt_g.zero_grad(), g_loss.backward(), opt_g.step()

    assert diagnose(stub)[0] == "not attempted"
    verdict, message = diagnose(half_rate)
    assert verdict == "different" and "no known mistake" in message
    with pytest.raises(AssertionError, match="train_step"):
        check_train_step(half_rate, strict=True)


def test_the_known_mistakes_differ_from_the_reference_and_from_each_other():
    """If two mistakes moved the parameters identically the checker could not tell them apart; none do."""
    reference = step_exercise._run(step_exercise.reference_step)
    results = {name: step_exercise._run(variant) for name, variant, _ in MISTAKES}
    for name, params in results.items():
        assert not step_exercise._same(params, reference), name
    names = list(results)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert not step_exercise._same(results[a], results[b]), f"{a} and {b} cannot be told apart"
    for name, variant, phrase, _ in ERRORS:
        with pytest.raises(RuntimeError, match=phrase):
            step_exercise._run(variant)


def test_a_step_with_slightly_smoothed_labels_is_not_called_correct():
    """One-sided label smoothing at 0.999 moves the parameters by little, but it is not the course's step."""
    def smoothed(G, D, opt_g, opt_d, real, z):
        fake = G(z)
        opt_d.zero_grad()
        (bce(D(real), 0.999) + bce(D(fake.detach()), 0.0)).backward()
        opt_d.step()
        opt_g.zero_grad()
        bce(D(fake), 1.0).backward()
        opt_g.step()

    verdict, message = diagnose(smoothed)
    assert verdict == "different", message
