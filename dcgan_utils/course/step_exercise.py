"""The exercise where the learner writes the training step: a checker that compares their step with the package's
and, when they differ, names the classic mistake that behaves the same way.

The learner writes `step(G, D, opt_g, opt_d, real, z)`: one D update on `real` and `G(z)`, then one G update through
the updated D, with the non-saturating loss. The checker runs it for two steps from a fixed start (float64 models,
so equal means equal), and compares both networks' parameters with the reference's. When they differ, it runs each
known wrong variant from the same start and names the one whose parameters match, or the one that raises the same
error: it judges the step by what it does, never by reading its source.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dcgan_utils.engine.losses import bce_with_logits, discriminator_loss, generator_loss
from dcgan_utils.engine.models import Discriminator, Generator

Step = Callable[..., object]  # step(G, D, opt_g, opt_d, real, z)
STEPS = 2  # a missing zero_grad shows only from the second step on (gradients start as None)


def reference_step(G, D, opt_g, opt_d, real, z) -> None:
    """The package's step: D on real and detached fakes, then G through the updated D (non-saturating)."""
    fake = G(z)
    d_loss = discriminator_loss(D(real), D(fake.detach()))  # BCE(D(x), 1) + BCE(D(G(z)), 0)
    opt_d.zero_grad()
    d_loss.backward()
    opt_d.step()
    g_loss = generator_loss(D(fake))  # BCE(D(G(z)), 1), through the D just updated
    opt_g.zero_grad()
    g_loss.backward()
    opt_g.step()


def _mistaken(flip: bool = False, g_flip: bool = False, minimax: bool = False, zero_d: bool = True,
              zero_g: bool = True, swap: bool = False, swap_steps: bool = False, detach: bool = True,
              stale: bool = False, leak: bool = False, joint: bool = False, zero_first: bool = False) -> Step:
    """reference_step with the named mistakes switched on (most variants below differ from it in one place)."""
    def step(G, D, opt_g, opt_d, real, z) -> None:
        early = zero_first or leak  # leak: both zero_grads first, fakes not detached, retain_graph
        if early:  # both zero_grads at the top of the step, as some code writes it
            opt_d.zero_grad()
            opt_g.zero_grad()
        fake = G(z)
        before_update = D(fake) if stale else None  # stale: G's step reuses D's output from before D's update
        first, second = (opt_g, opt_d) if swap else (opt_d, opt_g)  # swap: each network stepped by the other's
        stepped = (second, first) if swap_steps else (first, second)  # swap_steps: only the step() calls swapped
        shown = fake if (leak or not detach) else fake.detach()
        if joint:  # one call of D on real and fake together: its BatchNorm normalises them as one batch
            real_logits, fake_logits = D(torch.cat([real, shown])).split([len(real), len(shown)])
        else:
            real_logits, fake_logits = D(real), D(shown)
        d_loss = discriminator_loss(fake_logits, real_logits) if flip else discriminator_loss(real_logits, fake_logits)
        if zero_d and not early:
            first.zero_grad()
        d_loss.backward(retain_graph=leak)
        stepped[0].step()
        logits = before_update if stale else D(fake)
        # g_flip: G's target 0, BCE(D(G(z)), 0), which pushes D(G(z)) down: G helps D
        g_loss = bce_with_logits(logits, 0.0) if g_flip else generator_loss(logits, "minimax" if minimax
                                                                             else "non_saturating")
        if zero_g and not early:
            second.zero_grad()
        g_loss.backward()
        stepped[1].step()
    return step


# (name, variant, what the learner is told); the variants' behaviour is checked in tests/test_step_exercise.py
MISTAKES: list[tuple[str, Step, str]] = [
    ("labels flipped", _mistaken(flip=True),
     "D is rewarded for calling real images fake. Use target 1 for D(x) and 0 for D(G(z)) in D's step."),
    ("G's label flipped", _mistaken(g_flip=True),
     "G's loss used target 0, BCE(D(G(z)), 0), which G lowers by making its fakes easier to reject. G wants D to "
     "call its fakes real: BCE(D(G(z)), 1)."),
    ("minimax generator loss", _mistaken(minimax=True),
     "G minimises log(1 - D(G(z))), the saturating loss whose gradient vanishes when D rejects the fakes. "
     "Minimise -log D(G(z)) = BCE(D(G(z)), 1) instead (notebook 02)."),
    ("zero_grad missing for D", _mistaken(zero_d=False),
     "D's gradients pile up from one step to the next. Call opt_d.zero_grad() before d_loss.backward()."),
    ("zero_grad missing for G", _mistaken(zero_g=False),
     "G's gradients pile up from one step to the next. Call opt_g.zero_grad() before g_loss.backward()."),
    ("zero_grad missing for both", _mistaken(zero_d=False, zero_g=False),
     "both networks' gradients pile up from one step to the next. Call each optimiser's zero_grad() before its "
     "backward."),
    ("optimisers swapped", _mistaken(swap=True),
     "opt_g steps after D's backward and opt_d after G's. Step opt_d after d_loss.backward() and opt_g after "
     "g_loss.backward()."),
    ("optimisers' step() calls swapped, zero_grads first", _mistaken(swap_steps=True, zero_first=True),
     "opt_g.step() ran after d_loss.backward() (when G had no gradient yet, so G never moves) and opt_d.step() after "
     "g_loss.backward(), on D's gradients of both losses. Call opt_d.step() after d_loss.backward() and "
     "opt_g.step() after g_loss.backward()."),
    ("fakes not detached, and G's zero_grad before D's backward", _mistaken(leak=True),
     "D's loss reached G: without fake.detach(), d_loss.backward() also fills G's gradients, and with G's "
     "zero_grad() called before it (and retain_graph=True, or G's fakes computed again) they stay in G's step, "
     "pushing G to be caught. Use D(fake.detach()) in D's step, and call opt_g.zero_grad() just before "
     "g_loss.backward()."),
    ("D called once on real and fake together", _mistaken(joint=True),
     "D saw real and fake images in one batch. Some code does that on purpose, but with BatchNorm in D the two are "
     "normalised together and D's outputs differ from two separate calls, the course's step (and PyTorch's DCGAN "
     "example's). Call D(real) and D(fake.detach()) separately."),
]
ERRORS: list[tuple[str, Step, str, str]] = [  # (name, variant, a phrase of the error it raises, what to say)
    ("fakes not detached in D's step", _mistaken(detach=False), "backward through the graph a second time",
     "D's backward went through G and freed the graph G's step needs. In D's step use D(fake.detach())."),
    ("G's step through D's output from before D's update", _mistaken(stale=True), "modified by an inplace operation",
     "G's loss reused D's output computed before opt_d.step() changed D's weights. Compute D(fake) again after "
     "D's update."),
    ("optimisers' step() calls swapped", _mistaken(swap_steps=True), "modified by an inplace operation",
     "opt_g.step() ran after d_loss.backward(), so G's weights changed while G's step still needed the fakes "
     "computed from them. Call opt_d.step() after d_loss.backward() and opt_g.step() after g_loss.backward()."),
]


def _start(seed: int = 0):
    """A fixed start: small float64 models, Adam as in the course, two batches of real images and noise."""
    torch.manual_seed(seed)
    G, D = Generator(28, 1, 8, 4).double(), Discriminator(28, 1, 4).double()
    opt_g = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.5, 0.999))
    g = torch.Generator().manual_seed(seed + 1)
    reals = [torch.rand(16, 1, 28, 28, generator=g, dtype=torch.float64) * 2 - 1 for _ in range(STEPS)]
    zs = [torch.randn(16, 8, generator=g, dtype=torch.float64) for _ in range(STEPS)]
    return G, D, opt_g, opt_d, reals, zs


def _run(step: Step) -> torch.Tensor:
    """Both networks' parameters after STEPS calls of step from the fixed start, as one vector."""
    G, D, opt_g, opt_d, reals, zs = _start()
    for real, z in zip(reals, zs):
        step(G, D, opt_g, opt_d, real, z)
    return torch.cat([p.detach().flatten() for p in [*G.parameters(), *D.parameters()]])


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a, b, rtol=1e-7, atol=1e-10)


def _said(err: RuntimeError) -> str:
    """An error's first line, up to PyTorch's hint: what tells two errors apart."""
    return str(err).splitlines()[0].split(" Hint:")[0]


def _error_of(step: Step) -> str | None:
    """What the error step raises from the fixed start says (_said); None if it raises none."""
    try:
        _run(step)
    except RuntimeError as err:
        return _said(err)
    return None


def _diagnose_error(err: RuntimeError) -> tuple[str, str]:
    """Name the known variant that raises the same error (the tensor and its version in the message tell which
    network changed under a pending backward), else those raising the same kind of error, else none."""
    said = str(err).splitlines()[0]
    same = [(name, advice) for name, variant, _, advice in ERRORS if _error_of(variant) == _said(err)]
    kind = [(name, advice) for name, _, phrase, advice in ERRORS if phrase in said]
    found = same or kind
    if not found:
        return "different", f"it raised {type(err).__name__}: {err}"
    names = " or ".join(name for name, _ in found)
    return found[0][0], (f"it raised \"{said[:90]}...\", as a step does when {names}: "
                         + " Or: ".join(advice for _, advice in found))


def diagnose(step: Step) -> tuple[str, str]:
    """(verdict, message): "correct", a mistake's name, "not attempted" or "different", and what to do."""
    try:
        got = _run(step)
    except NotImplementedError:
        return "not attempted", "not attempted yet. Fill in the function above and run this cell again."
    except RuntimeError as err:
        return _diagnose_error(err)
    reference = _run(reference_step)
    if _same(got, reference):
        return "correct", f"correct: after {STEPS} steps both networks' parameters equal the package's step."
    matches = [(name, advice) for name, variant, advice in MISTAKES if _same(got, _run(variant))]
    if matches:
        names = " or ".join(name for name, _ in matches)
        return matches[0][0], f"your updates equal those of a step with {names}: {matches[0][1]}"
    n_g = sum(p.numel() for p in Generator(28, 1, 8, 4).parameters())
    off_g, off_d = (got[:n_g] - reference[:n_g]).abs().max().item(), (got[n_g:] - reference[n_g:]).abs().max().item()
    return "different", (f"after {STEPS} steps G's parameters differ from the package's step by up to {off_g:.3g} "
                         f"and D's by up to {off_d:.3g}, and no known mistake explains it: check the order (D's "
                         f"update first, then G's through the updated D) and the losses (notebook 02).")


def check_train_step(step: Step, strict: bool = False) -> bool | None:
    """Run the learner's step against the package's; print the verdict (and the likely mistake).

    Like the other checks (exercises.run_check): True or AssertionError when strict, else None.
    """
    verdict, message = diagnose(step)
    print(f"train_step: {message}")
    if strict and verdict != "correct":
        raise AssertionError(f"train_step: {message}")
    return True if strict else None
