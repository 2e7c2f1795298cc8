"""The failure meters against direct formulas: diversity by explicit pairs, checkerboard share without the FFT."""

import itertools

import pytest
import torch
from torch import nn

from dcgan_utils.engine.data import to_uint8
from dcgan_utils.evaluation.diagnostics import checkerboard_share, diversity, grid_meters
from dcgan_utils.engine.run_state import build_state
from helpers import tiny_config


def test_diversity_is_the_mean_rms_distance_over_all_pairs():
    images = torch.randn(7, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    pairs = [((a - b) ** 2).mean().sqrt() for a, b in itertools.permutations(images, 2)]
    assert diversity(images) == pytest.approx(torch.stack(pairs).mean().item(), rel=1e-5)
    assert diversity(images[torch.randperm(7)]) == pytest.approx(diversity(images), rel=1e-5)


def test_diversity_of_a_collapsed_batch_is_zero_and_of_opposites_is_two():
    one = torch.rand(1, 3, 8, 8) * 2 - 1
    assert diversity(one.expand(16, -1, -1, -1)) < 1e-6
    assert diversity(torch.stack([-torch.ones(1, 4, 4), torch.ones(1, 4, 4)])) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="at least 2 images"):
        diversity(one)


def _share_by_sums(images: torch.Tensor) -> float:
    """The same share from the three period-2 Fourier coefficients written as signed sums, and Parseval's total."""
    x = images.double() - images.double().mean(dim=(-2, -1), keepdim=True)
    h, w = x.shape[-2:]
    rows = (-1.0) ** torch.arange(h, dtype=torch.float64)[:, None]  # flips sign every row
    cols = (-1.0) ** torch.arange(w, dtype=torch.float64)[None, :]  # every column
    coefficients = [(x * sign).sum(dim=(-2, -1)) for sign in (rows * cols, rows, cols)]
    return (sum((c ** 2).sum() for c in coefficients) / (h * w * (x ** 2).sum())).item()


def test_checkerboard_share_matches_the_signed_sums():
    images = torch.randn(5, 3, 16, 12, generator=torch.Generator().manual_seed(1))
    images[:2] += 0.5 * (-1.0) ** (torch.arange(16)[:, None] + torch.arange(12))  # some with a pattern added
    assert checkerboard_share(images) == pytest.approx(_share_by_sums(images), rel=1e-4)


def test_checkerboard_share_of_patterns_photo_like_ramps_and_constants():
    i, j = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    assert checkerboard_share(((-1.0) ** (i + j)).expand(2, 3, -1, -1)) == pytest.approx(1.0)
    assert checkerboard_share(((-1.0) ** i).expand(2, 1, -1, -1)) == pytest.approx(1.0)  # stripes count too
    assert checkerboard_share(((i + j) / 62.0 * 2 - 1).expand(2, 3, -1, -1)) < 0.01  # smooth: almost nothing
    assert checkerboard_share(torch.full((2, 3, 8, 8), 0.3)) == 0.0
    with pytest.raises(ValueError, match="even H and W"):
        checkerboard_share(torch.zeros(1, 1, 7, 7))


@pytest.mark.parametrize("kernel, output_padding, expect_pattern", [(3, 1, True), (4, 0, False)])
def test_uneven_overlap_of_a_transposed_convolution_is_what_the_meter_sees(kernel, output_padding, expect_pattern):
    up = nn.ConvTranspose2d(1, 1, kernel, stride=2, padding=1, output_padding=output_padding, bias=False)
    nn.init.ones_(up.weight)  # every input pixel stamps the same kernel: only the overlaps vary
    with torch.no_grad():
        out = up(torch.ones(1, 1, 16, 16))  # (1, 1, 32, 32)
    assert out.shape[-1] == 32
    assert (checkerboard_share(out) > 0.5) == expect_pattern
    assert (checkerboard_share(out) < 0.01) == (not expect_pattern)


def test_grid_meters_read_every_saved_grid():
    state = build_state(tiny_config())
    with pytest.raises(ValueError, match="sample_every"):
        grid_meters(state)
    g = torch.Generator().manual_seed(2)
    grids = [torch.rand(8, 1, 28, 28, generator=g) * 2 - 1 for _ in range(3)]
    grids[1][:] = grids[1][0]  # a collapsed grid in the middle
    state.grids = [(step, to_uint8(x)) for step, x in zip((5, 10, 15), grids)]
    meters = grid_meters(state)
    assert meters["step"] == [5, 10, 15]
    assert meters["diversity"][1] == 0 and min(meters["diversity"][0], meters["diversity"][2]) > 0.5
    # independent routes, on the uint8 pixels the grids hold (scaled back to [-1, 1]): signed sums, explicit pairs
    stored = [to_uint8(x).double() / 127.5 - 1 for x in grids]
    assert meters["checkerboard"] == pytest.approx([_share_by_sums(x) for x in stored], rel=1e-4)
    pairs = [torch.stack([((a - b) ** 2).mean().sqrt() for a, b in itertools.permutations(x, 2)]).mean().item()
             for x in stored]
    assert meters["diversity"] == pytest.approx(pairs, rel=1e-4, abs=1e-7)
