"""Exercise checkers: each runs the learner's function on a few cases chosen to catch the usual mistakes (random
inputs, and extreme or degenerate ones where a naive formula breaks) and compares it with the course's reference to
1e-6 (counts and sizes, whose answers are whole numbers: exactly), printing what differs. Each verdict says which
cases it tried and to what precision.

Every check returns True when the answer matches. With strict=True a wrong answer raises AssertionError (the
notebooks' hidden solution cells use that, so CI fails if a reference or a check breaks).
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from dcgan_utils.course import theory
from dcgan_utils.engine.losses import bce_with_logits, discriminator_loss, generator_loss

ATOL = RTOL = 1e-6
EXTREME_LOGITS = (-1000.0, -100.0, -30.0, 0.0, 30.0, 100.0, 1000.0)  # where a naive log(sigmoid(l)) breaks
LOGITS_TRIED = "random logits; logits from -1000 to 1000"  # the verdict's words for _logit_cases
SIZE_CASES = ((28, 4, 2, 1), (7, 4, 2, 1), (1, 4, 1, 0), (1, 4, 1, 1), (1, 7, 1, 0), (2, 4, 1, 1), (5, 3, 2, 0),
              (13, 5, 3, 2), (64, 4, 2, 1))  # (n, kernel, stride, padding); (2, 4, 1, 1): one full window
SIZES_TRIED = {False: "inputs 2 to 64 wide, strides 1 to 3, sides from PyTorch's own layer",  # _size_cases(False)
               True: "inputs 1 to 64 wide, strides 1 to 3, sides from PyTorch's own layer"}  # (a Conv2d skips 1-wide)


def _random(shape: tuple[int, ...], seed: int, scale: float = 1.0) -> torch.Tensor:
    """Reproducible float64 normal samples."""
    return scale * torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _describe(args: tuple) -> str:
    """A short description of a case's inputs for an error message."""
    parts = []
    for a in args:
        if torch.is_tensor(a) and a.numel() > 4:
            parts.append(f"tensor of shape {tuple(a.shape)} (min {a.min().item():.3g}, max {a.max().item():.3g})")
        elif torch.is_tensor(a):
            parts.append(str([round(v, 6) for v in a.flatten().tolist()]))
        else:
            parts.append(repr(a))
    return ", ".join(parts)


def _compare(got, expected: torch.Tensor, exact: bool = False) -> str | None:
    """None when got matches expected to 1e-6 (exact: equals it), else what differs."""
    if not torch.is_tensor(got):
        try:
            got = torch.as_tensor(got, dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError):
            return f"returned {type(got).__name__}, expected a tensor"
    got = got.detach().to(torch.float64)
    if got.shape != expected.shape:
        return f"returned shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
    if not torch.isfinite(got).all() and torch.isfinite(expected).all():
        bad = tuple((~torch.isfinite(got)).nonzero()[0].tolist())
        where = f" at index {list(bad)}" if bad else ""
        return f"returned {got[bad].item()} (not finite){where}, expected {expected[bad].item():.6g}"
    if torch.equal(got, expected) if exact else torch.allclose(got, expected, atol=ATOL, rtol=RTOL, equal_nan=True):
        return None
    error = (got - expected).abs()
    where = tuple(torch.nonzero(error == error.max())[0].tolist())
    if exact:  # whole numbers as such, anything else in full: a near-miss such as 31.0000001 must not print as 31
        show = lambda v: str(int(v)) if v == int(v) else repr(v)  # noqa: E731
    else:
        show = lambda v: f"{v:.6g}"  # noqa: E731
    return f"is off by {error.max().item():.3g} (got {show(got[where].item())}, expected {show(expected[where].item())})"


def run_check(name: str, fn: Callable, cases: list[tuple[tuple, torch.Tensor]], strict: bool = False, *,
              tried: str, exact: bool = False) -> bool | None:
    """Call fn(*args) for every (args, expected) case; print one verdict, with the first case that fails.

    tried: what the cases are, in a few words, for the verdict ("random logits and +-1000"); it must describe the
    cases truthfully (a check of fixed values does not say "random"). exact: the answers are whole numbers (sizes,
    counts), compared for equality instead of to 1e-6.

    strict=True (solutions, tests): True, or AssertionError. Otherwise None, whatever the verdict, so a learner's cell
    shows only the printed verdict (a returned False would print under it, and nbval's kernels show it even after `;`).
    """
    for args, expected in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            print(f"{name}: not attempted yet. Fill in the function above and run this cell again.")
            if strict:
                raise AssertionError(f"{name}: not attempted")
            return None
        except Exception as err:  # the learner's code may raise anything; report it instead of a traceback
            message = f"raised {type(err).__name__}: {err}"
        else:
            message = _compare(got, expected, exact)
        if message:
            text = f"{name}: not yet right. With inputs {_describe(args)} it {message}."
            print(text)
            if strict:
                raise AssertionError(text)
            return None
    print(f"{name}: correct on {len(cases)} cases: {tried} ({'exactly' if exact else f'to {ATOL:g}'}).")
    return True if strict else None


def _stacked(fn: Callable) -> Callable:
    """Wrap a function that returns a pair (or tuple) of tensors so its answer compares as one stacked tensor."""
    return lambda *args: torch.stack([torch.as_tensor(part) for part in fn(*args)])


# ---- notebook 01: the theory --------------------------------------------------------------------------------

def check_optimal_discriminator(fn: Callable, strict: bool = False) -> bool | None:
    """fn(p_data, p_g) -> D*(x), elementwise on tensors of density values."""
    a, b = _random((1000,), 1).abs(), _random((1000,), 2).abs()
    tiny = torch.tensor([1e-300, 0.0, 5.0, 1e-12], dtype=torch.float64)
    other = torch.tensor([1.0, 3.0, 0.0, 1e-12], dtype=torch.float64)
    cases = [((a, b), theory.optimal_discriminator(a, b)),
             ((tiny, other), theory.optimal_discriminator(tiny, other))]
    return run_check("optimal_discriminator", fn, cases, strict, tried="1,000 random densities; zero and tiny ones")


def check_jsd(fn: Callable, strict: bool = False) -> bool | None:
    """fn(p, q) -> Jensen-Shannon divergence in nats of two probability vectors (zeros allowed)."""
    p, q = _random((50,), 3).exp(), _random((50,), 4).exp()
    p, q = p / p.sum(), q / q.sum()
    disjoint = (torch.tensor([0.5, 0.5, 0.0, 0.0], dtype=torch.float64),
                torch.tensor([0.0, 0.0, 0.25, 0.75], dtype=torch.float64))
    same = (p, p.clone())
    cases = [(args, theory.jsd(*args)) for args in ((p, q), disjoint, same)]
    return run_check("jsd", fn, cases, strict, tried="random distributions, disjoint ones, equal ones")


def check_game_value(fn: Callable, strict: bool = False) -> bool | None:
    """fn(jsd) -> C(G) = max_D V(D, G), the game's value at the optimal D for a given JSD(p_data || p_g)."""
    values = torch.tensor([0.0, 0.1, 0.5, math.log(2)], dtype=torch.float64)
    cases = [((v,), -theory.LOG4 + 2 * v) for v in values]
    return run_check("game_value", fn, cases, strict, tried="JSD 0, 0.1, 0.5 and log 2")


def check_simultaneous_step(fn: Callable, strict: bool = False) -> bool | None:
    """fn(x, y, lr) -> (x', y'): one simultaneous gradient step on f = x y (x descends, y ascends)."""
    cases = []
    for seed, lr in ((5, 0.1), (6, 0.5), (7, 1e-3)):
        x, y = _random((100,), seed), _random((100,), seed + 10)
        cases.append(((x, y, lr), torch.stack([x - lr * y, y + lr * x])))
    return run_check("simultaneous_step", _stacked(fn), cases, strict,
                     tried="random points, learning rates 0.1, 0.5, 0.001")


# ---- notebook 02: the losses --------------------------------------------------------------------------------

def _logits() -> list[torch.Tensor]:
    """The logits every loss check tries: random ones, then the extreme ones."""
    return [_random((256,), 8, scale=3.0), torch.tensor(EXTREME_LOGITS, dtype=torch.float64)]


def _logit_cases(fn_ref: Callable) -> list[tuple[tuple, torch.Tensor]]:
    """_logits(), each with the reference's value."""
    return [((l,), fn_ref(l)) for l in _logits()]


def check_non_saturating_loss(fn: Callable, strict: bool = False) -> bool | None:
    """fn(fake_logits) -> -mean log D(G(z)), stable at any logit."""
    return run_check("non_saturating_loss", fn, _logit_cases(lambda l: generator_loss(l, "non_saturating")), strict,
                     tried=LOGITS_TRIED)


def check_generator_gradients(fn: Callable, strict: bool = False) -> bool | None:
    """fn(logits) -> (d/dl log(1 - sigmoid(l)), d/dl -log sigmoid(l)): the two G losses' gradients, per logit."""
    def reference(l):
        return torch.stack([-torch.sigmoid(l), torch.sigmoid(l) - 1])
    return run_check("generator_gradients", _stacked(fn), _logit_cases(reference), strict, tried=LOGITS_TRIED)


def check_discriminator_loss(fn: Callable, strict: bool = False) -> bool | None:
    """fn(real_logits, fake_logits, real_label) -> BCE(D(x), real_label) + BCE(D(G(z)), 0), stable at any logit."""
    cases = []
    for real, fake in ((_random((128,), 9, 3.0), _random((128,), 10, 3.0)),
                       (torch.tensor(EXTREME_LOGITS, dtype=torch.float64),
                        -torch.tensor(EXTREME_LOGITS, dtype=torch.float64))):
        for label in (1.0, 0.9):
            cases.append(((real, fake, label), discriminator_loss(real, fake, "non_saturating", label)))
    return run_check("discriminator_loss", fn, cases, strict, tried=f"{LOGITS_TRIED}, real label 1 and 0.9")


def check_bce(fn: Callable, strict: bool = False) -> bool | None:
    """fn(logits, target) -> mean binary cross-entropy from logits, stable at any logit."""
    cases = [((l, t), bce_with_logits(l, t)) for l in _logits() for t in (0.0, 0.9, 1.0)]
    return run_check("bce", fn, cases, strict, tried=f"{LOGITS_TRIED}, targets 0, 0.9, 1")


# ---- notebook 03: the architecture --------------------------------------------------------------------------

def _size_cases(transposed: bool) -> list[tuple[tuple, torch.Tensor]]:
    """(n, kernel, stride, padding) cases with the side PyTorch's own layer produces."""
    cases = []
    for n, k, s, p in SIZE_CASES:
        if not transposed and n + 2 * p < k:
            continue  # a convolution needs at least one full window (n + 2p == k: exactly one)
        layer = (torch.nn.ConvTranspose2d if transposed else torch.nn.Conv2d)(1, 1, k, s, p)
        with torch.no_grad():
            side = layer(torch.zeros(1, 1, n, n)).shape[-1]
        cases.append(((n, k, s, p), torch.tensor(float(side), dtype=torch.float64)))
    return cases


def check_conv_output_size(fn: Callable, strict: bool = False) -> bool | None:
    """fn(n, kernel, stride, padding) -> side of a Conv2d's output, compared with PyTorch's layer."""
    return run_check("conv_output_size", fn, _size_cases(False), strict, tried=SIZES_TRIED[False],
                     exact=True)


def check_conv_transpose_output_size(fn: Callable, strict: bool = False) -> bool | None:
    """fn(n, kernel, stride, padding) -> side of a ConvTranspose2d's output, compared with PyTorch's layer."""
    return run_check("conv_transpose_output_size", fn, _size_cases(True), strict,
                     tried=SIZES_TRIED[True], exact=True)


def check_generator_block(fn: Callable, strict: bool = False) -> bool | None:
    """fn(c_in, c_out) -> a DCGAN generator block: doubles the side, c_in -> c_out channels, BatchNorm, ReLU."""
    from dcgan_utils.engine.models import count_parameters

    def describe(c_in, c_out):
        block = fn(c_in, c_out)
        if not isinstance(block, torch.nn.Module):
            raise TypeError(f"expected an nn.Module, got {type(block).__name__}")
        kinds = [type(m).__name__ for m in block.modules() if not list(m.children())]
        if kinds != ["ConvTranspose2d", "BatchNorm2d", "ReLU"]:
            raise ValueError(f"layers {kinds}, expected ConvTranspose2d, BatchNorm2d, ReLU in that order")
        with torch.no_grad():
            out = block.train()(torch.randn(2, c_in, 4, 4, generator=torch.Generator().manual_seed(0)))
        return torch.tensor([*out.shape, count_parameters(block)], dtype=torch.float64)

    cases = [((c_in, c_out), torch.tensor([2, c_out, 8, 8, c_in * c_out * 16 + 2 * c_out], dtype=torch.float64))
             for c_in, c_out in ((8, 4), (512, 256), (3, 3))]
    return run_check("generator_block (shape N, C, H, W and parameter count)", describe, cases, strict,
                     tried="channels 8 -> 4, 512 -> 256, 3 -> 3", exact=True)


PARAMETER_LAYERS = ((100, 512, 4), (64, 3, 4), (1, 1, 1), (256, 128, 3))  # (c_in, c_out, kernel): G's first and
# last layers of PyTorch's examples/dcgan 64x64 G (the course's at width 64), the smallest layer, and an odd kernel


def check_parameter_count(fn: Callable, strict: bool = False) -> bool | None:
    """fn(c_in, c_out, kernel) -> parameters of ConvTranspose2d(c_in, c_out, kernel, bias=False) + BatchNorm2d(c_out)."""
    cases = []
    for c_in, c_out, k in PARAMETER_LAYERS:
        layers = [torch.nn.ConvTranspose2d(c_in, c_out, k, bias=False), torch.nn.BatchNorm2d(c_out)]
        cases.append(((c_in, c_out, k), torch.tensor(float(sum(p.numel() for m in layers for p in m.parameters())),
                                                     dtype=torch.float64)))
    shapes = ", ".join(f"{c_in} -> {c_out} (kernel {k})" for c_in, c_out, k in PARAMETER_LAYERS)
    return run_check("parameter_count", fn, cases, strict, tried=f"layers {shapes}, counted by PyTorch", exact=True)


# ---- notebook 04: training on MNIST -------------------------------------------------------------------------

def check_to_model_range(fn: Callable, strict: bool = False) -> bool | None:
    """fn(uint8 images) -> float images in [-1, 1]: 0 -> -1, 255 -> 1, linear between."""
    from dcgan_utils.engine.data import to_model_range

    every = torch.arange(256, dtype=torch.uint8)
    batch = torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(11))
    return run_check("to_model_range", fn, [((x.clone(),), to_model_range(x).double()) for x in (every, batch)], strict,
                     tried="all 256 pixel values; a random batch")


def check_slerp(fn: Callable, strict: bool = False) -> bool | None:
    """fn(z0, z1, t) -> spherical interpolation between noise vectors (..., d) at fraction t."""
    from dcgan_utils.course.latent import slerp

    z0, z1 = _random((100,), 12), _random((100,), 13)
    rows0, rows1 = _random((5, 100), 14), _random((5, 100), 15)
    cases = [((z0, z1, t), slerp(z0, z1, t)) for t in (0.0, 0.3, 0.5, 1.0)]
    cases.append(((rows0, rows1, 0.25), slerp(rows0, rows1, 0.25)))
    return run_check("slerp", fn, cases, strict, tried="random vectors at t = 0, 0.3, 0.5, 1; a batch of rows")


def check_class_shares(fn: Callable, strict: bool = False) -> bool | None:
    """fn(labels, num_classes) -> (num_classes,) share of the labels in each class (zeros for absent classes)."""
    labels = torch.randint(0, 10, (1000,), generator=torch.Generator().manual_seed(16))
    collapsed = torch.tensor([1, 1, 1, 7, 1, 1, 7, 1])  # a mode-collapsed generator's digits

    def reference(y, n):
        return torch.bincount(y, minlength=n).double() / len(y)

    one_class = torch.zeros(3, dtype=torch.long)
    cases = [((y, n), reference(y, n)) for y, n in ((labels, 10), (collapsed, 10), (one_class, 2))]
    return run_check("class_shares", fn, cases, strict, tried="random labels; a collapsed generator's; one class")


def check_nearest_neighbour(fn: Callable, strict: bool = False) -> bool | None:
    """fn(queries (N, C, H, W), references (M, C, H, W)) -> (N,) index of each query's nearest reference (pixels, L2)."""
    refs = _random((50, 1, 8, 8), 17)
    queries = _random((20, 1, 8, 8), 18)
    copies = refs[[3, 41, 0]] + 1e-3 * _random((3, 1, 8, 8), 19)  # near-copies of training images must be found

    def reference(q, r):
        return torch.cdist(q.flatten(1), r.flatten(1)).argmin(1).double()

    cases = [((q, refs), reference(q, refs)) for q in (queries, copies)]
    return run_check("nearest_neighbour", lambda q, r: torch.as_tensor(fn(q, r)).double(), cases, strict,
                     tried="random images; near-copies of references")


# ---- notebook 05: CIFAR-10 and CUDA -------------------------------------------------------------------------

DATASET_SHAPES = ((50000, 3, 32, 1), (50000, 3, 32, 4), (60000, 1, 28, 1), (202599, 3, 64, 2))  # (n, channels,
# side, bytes per value): CIFAR-10's training set in uint8 and in float32, MNIST's in uint8, CelebA at 64x64 in fp16


def check_dataset_memory(fn: Callable, strict: bool = False) -> bool | None:
    """fn(n, channels, side, bytes_per_value) -> MiB (2**20 bytes) that n images of that shape take."""
    cases = [((n, c, side, b), torch.tensor(n * c * side * side * b / 2**20, dtype=torch.float64))
             for n, c, side, b in DATASET_SHAPES]
    return run_check("dataset_memory", fn, cases, strict, tried="four dataset shapes")


def check_amdahl(fn: Callable, strict: bool = False) -> bool | None:
    """fn(fraction, speedup) -> overall speed-up when `fraction` of a step's time gets `speedup` times faster."""
    f = torch.tensor([0.0, 0.25, 0.6, 0.9, 1.0], dtype=torch.float64)
    cases = [((f, s), 1 / ((1 - f) + f / s)) for s in (1.0, 1.5, 4.0)]
    return run_check("amdahl", fn, cases, strict, tried="fractions 0 to 1, speed-ups 1, 1.5, 4")


def check_images_per_second(fn: Callable, strict: bool = False) -> bool | None:
    """fn(batch_size, steps, milliseconds) -> images per second, from a CUDA event timing in milliseconds."""
    timings = ((128, 50, 812.5), (64, 200, 10.0), (1, 1, 1000.0))  # pragma: no mutate (any timings do)
    cases = [((b, s, ms), torch.tensor(b * s / (ms / 1000), dtype=torch.float64)) for b, s, ms in timings]
    return run_check("images_per_second", fn, cases, strict, tried="three timings")
