"""Convolution arithmetic against PyTorch's layers, the hand-made transposed convolution, and the hook table."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan_utils.engine.models import Discriminator, Generator
from dcgan_utils.course.shapes import (conv_output_size, conv_transpose_output_size, predicted_size, shape_table,
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
