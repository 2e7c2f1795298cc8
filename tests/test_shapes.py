"""Convolution arithmetic against PyTorch's layers, the hand-made transposed convolution, and the hook table."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan_utils.engine.models import Discriminator, Generator
from dcgan_utils.course.shapes import (check_output_shape, conv_input_sides, conv_output_size,
                                       conv_transpose_output_size, output_padding_for, predicted_size, shape_table,
                                       transposed_conv_by_hand)


@pytest.mark.parametrize("n,k,s,p", [c for c in itertools.product((1, 4, 7, 13, 28), (1, 3, 4, 5), (1, 2, 3), (0, 1, 2))
                                     if c[0] + 2 * c[3] >= c[1]])
def test_size_formulas_match_pytorchs_layers(n, k, s, p):
    x = torch.zeros(1, 1, n, n)
    with torch.no_grad():
        assert conv_output_size(n, k, s, p) == nn.Conv2d(1, 1, k, s, p)(x).shape[-1]
        try:
            side = nn.ConvTranspose2d(1, 1, k, s, p)(x).shape[-1]
        except RuntimeError:  # PyTorch refuses: padding crops more than the output has
            assert conv_transpose_output_size(n, k, s, p) < 1
        else:
            assert conv_transpose_output_size(n, k, s, p) == side


@pytest.mark.parametrize("n,k,s,p", [(2, 3, 2, 0), (3, 4, 2, 1), (4, 5, 3, 2), (5, 2, 1, 0)])
def test_transposed_convolution_by_hand_matches_pytorch(n, k, s, p):
    g = torch.Generator().manual_seed(n * 10 + k)
    x, w = torch.randn(n, n, generator=g, dtype=torch.float64), torch.randn(k, k, generator=g, dtype=torch.float64)
    expected = F.conv_transpose2d(x[None, None], w[None, None], stride=s, padding=p)[0, 0]
    assert torch.allclose(transposed_conv_by_hand(x, w, s, p), expected, atol=1e-12)


def test_shape_table_reads_every_leaf_layer_and_removes_its_hooks():
    G = Generator(32, 3, latent_dim=16, width=8)
    rows = shape_table(G, torch.randn(2, 16))
    leaves = [m for m in G.modules() if not list(m.children())]
    assert [r["module"] for r in rows] == leaves
    assert rows[0]["in"] == (2, 16, 1, 1) and rows[-1]["out"] == (2, 3, 32, 32)
    assert sum(r["params"] for r in rows) == sum(p.numel() for p in G.parameters())
    assert all(not m._forward_hooks for m in leaves)
    for r in rows:
        if isinstance(r["module"], (nn.Conv2d, nn.ConvTranspose2d)):
            assert predicted_size(r["module"], r["in"][-1]) == r["out"][-1]


def test_predicted_size_fits_every_discriminator_layer():
    D = Discriminator(28, 1, width=8)
    rows = [r for r in shape_table(D.net, torch.zeros(2, 1, 28, 28)) if isinstance(r["module"], nn.Conv2d)]
    assert [r["out"][-1] for r in rows] == [14, 7, 1]
    assert all(predicted_size(r["module"], r["in"][-1]) == r["out"][-1] for r in rows)


@pytest.mark.parametrize("k,s,p", [c for c in itertools.product((1, 3, 4, 5), (1, 2, 3), (0, 1, 2)) if c[2] < c[0]])
def test_conv_input_sides_are_exactly_the_sides_a_real_conv_folds_together(k, s, p):
    w = torch.zeros(1, 1, k, k)
    real = {}  # output side -> the input sides 1..40 that F.conv2d maps there
    for n in range(1, 41):
        if n + 2 * p >= k:
            real.setdefault(F.conv2d(torch.zeros(1, 1, n, n), w, stride=s, padding=p).shape[-1], []).append(n)
    for m, sides in real.items():
        if max(sides) < 40 - s:  # the whole preimage lies inside the range tried
            assert list(conv_input_sides(m, k, s, p)) == sides


@pytest.mark.parametrize("k,s,p", [c for c in itertools.product((1, 3, 4, 5), (1, 2, 3), (0, 1, 2)) if c[2] < c[0]])
def test_output_padding_for_makes_the_transposed_layer_give_back_the_input_side(k, s, p):
    w = torch.zeros(1, 1, k, k)
    for n in range(max(1, k - 2 * p), 20):
        m = F.conv2d(torch.zeros(1, 1, n, n), w, stride=s, padding=p).shape[-1]
        op = output_padding_for(n, k, s, p)
        assert 0 <= op < s and (op == 0) == ((n + 2 * p - k) % s == 0)
        assert F.conv_transpose2d(torch.zeros(1, 1, m, m), w, stride=s, padding=p, output_padding=op).shape[-1] == n
        if s > 1:  # any other output_padding misses n (or PyTorch refuses it: the output would be empty)
            try:
                side = F.conv_transpose2d(torch.zeros(1, 1, m, m), w, stride=s, padding=p,
                                          output_padding=(op + 1) % s).shape[-1]
            except RuntimeError:
                side = None
            assert side != n


def test_check_output_shape_passes_a_right_network_and_names_the_sides_of_a_wrong_one():
    G = Generator(32, 3, latent_dim=16, width=8)
    rows = check_output_shape(G, torch.randn(2, 16), (3, 32, 32))
    assert [r["module"] for r in rows] == [r["module"] for r in shape_table(G, torch.randn(2, 16))]
    D = Discriminator(28, 1, width=8)
    check_output_shape(D, torch.zeros(2, 1, 28, 28), ())  # logits (N,): the output after forward's flatten
    short = nn.Sequential(nn.Linear(10, 4 * 8 * 8), nn.Unflatten(1, (4, 8, 8)), nn.ConvTranspose2d(4, 2, 3, 1, 1),
                          nn.ConvTranspose2d(2, 2, 4, 2, 1), nn.ConvTranspose2d(2, 1, 4, 2, 1), nn.Tanh())
    with pytest.raises(AssertionError) as err:
        check_output_shape(short, torch.zeros(2, 10), (1, 64, 64))
    assert str(err.value) == ("output (1, 32, 32), expected (1, 64, 64). Shapes along the way: (10,) -> (256,) -> "
                              "(4, 8, 8) -> (2, 8, 8) -> (2, 16, 16) -> (1, 32, 32)")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in short.modules())


def test_check_output_shape_names_the_layer_that_raises_and_removes_its_hooks():
    mnist = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(4 * 14 * 14, 1))
    with pytest.raises(AssertionError, match=r"^layer '0' \(Conv2d\) raised RuntimeError: .*1 channels.*3 channels.*"
                                             r"Shapes until then: \(3, 32, 32\)$"):
        check_output_shape(mnist, torch.zeros(2, 3, 32, 32), (1,))
    with pytest.raises(AssertionError, match=r"^layer '3' \(Linear\) raised RuntimeError: mat1 and mat2 .*"
                                             r"\(1, 32, 32\) -> \(4, 16, 16\) -> \(1024,\)$"):
        check_output_shape(mnist, torch.zeros(2, 1, 32, 32), (1,))
    assert check_output_shape(mnist, torch.zeros(2, 1, 28, 28), (1,))[-1]["out"] == (2, 1)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in mnist.modules())
