"""Latent-space walks: slerp against its geometric definition, the sweep, and the explorer widget's wiring."""

import math

import pytest
import torch

from dcgan_utils.course.latent import coordinate_sweep, interpolation, latent_explorer, slerp


def _angle(a, b):
    return torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1, 1)).item()


@pytest.mark.parametrize("t", [0.0, 0.2, 0.5, 0.9, 1.0])
def test_slerp_turns_by_the_fraction_t_of_the_angle_in_the_plane_of_the_two_vectors(t):
    g = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(100, generator=g, dtype=torch.float64), torch.randn(100, generator=g, dtype=torch.float64)
    z1 = z1 / z1.norm() * z0.norm()  # equal norms: the path stays on their sphere
    omega, zt = _angle(z0, z1), slerp(z0, z1, t)
    assert math.isclose(_angle(z0, zt), t * omega, abs_tol=1e-6)
    assert math.isclose(_angle(zt, z1), (1 - t) * omega, abs_tol=1e-6)
    assert math.isclose(zt.norm().item(), z0.norm().item(), rel_tol=1e-9)
    basis = torch.linalg.qr(torch.stack([z0, z1], 1)).Q  # zt lies in span(z0, z1)
    assert torch.allclose(basis @ (basis.T @ zt), zt, atol=1e-9)


def test_slerp_of_parallel_vectors_is_the_straight_line_and_rows_are_independent():
    z = torch.randn(3, 10, dtype=torch.float64)
    assert torch.allclose(slerp(z, 2 * z, 0.5), 1.5 * z)
    rows = slerp(z, z.flip(0), 0.3)
    assert torch.allclose(rows[1], slerp(z[1], z[1], 0.3)) and torch.allclose(rows[0], slerp(z[0], z[2], 0.3))


def test_interpolation_ends_at_both_vectors_and_the_straight_line_sags_inside_the_sphere():
    g = torch.Generator().manual_seed(2)
    z0, z1 = torch.randn(2, 100, generator=g)
    line, sphere = interpolation(z0, z1, 5, spherical=False), interpolation(z0, z1, 5)
    for path in (line, sphere):
        assert torch.allclose(path[0], z0, atol=1e-6) and torch.allclose(path[-1], z1, atol=1e-6)
    assert line[2].norm() < 0.8 * min(z0.norm(), z1.norm())  # independent samples are nearly orthogonal
    assert sphere[2].norm() > 0.95 * min(z0.norm(), z1.norm())


def test_coordinate_sweep_changes_one_coordinate_only():
    z = torch.randn(8)
    sweep = coordinate_sweep(z, 3, torch.tensor([-1.0, 0.0, 2.0]))
    assert sweep[:, 3].tolist() == [-1.0, 0.0, 2.0]
    keep = [i for i in range(8) if i != 3]
    assert torch.equal(sweep[:, keep], z[keep].expand(3, -1))
    with pytest.raises(ValueError, match=r"coordinate must be in \[0, 8\)"):
        coordinate_sweep(z, 8, torch.tensor([0.0]))


def test_latent_explorer_redraws_from_the_generator_when_a_slider_moves():
    drawn = []

    def draw(z):
        drawn.append(z.clone())
        return torch.tanh(z[:, :16].reshape(-1, 1, 4, 4))

    z0, z1 = torch.randn(2, 16)
    box = latent_explorer(draw, z0, z1)
    first = len(drawn)
    t_slider, coordinate, value = box.children[0].children
    coordinate.value, value.value = 5, 2.0
    assert len(drawn) == first * 3  # one redraw per change
    assert drawn[-2][0, 5].item() == 2.0  # the single image uses the chosen coordinate and value


def test_the_explorer_starts_at_the_paths_own_point_and_shows_a_picture_where_widgets_cannot_run():
    import base64

    drawn = []

    def draw(z):
        drawn.append(z.clone())
        return torch.tanh(z[:, :16].reshape(-1, 1, 4, 4))

    g = torch.Generator().manual_seed(4)
    z0, z1 = torch.randn(2, 16, generator=g)
    box = latent_explorer(draw, z0, z1)
    t_slider, coordinate, value = box.children[0].children
    point = slerp(z0, z1, t_slider.value)
    # the value slider starts at the point's own coordinate (once it started at z0's, a figure other than the path's)
    assert value.value == round(point[coordinate.value].item(), 2)
    assert torch.allclose(drawn[1][0], point, atol=0.01)  # the single image at t is the path's point
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert not bundle["text/plain"].startswith("VBox") and "latent explorer" in bundle["text/plain"]
    first = base64.b64decode(bundle["image/png"])
    assert first.startswith(b"\x89PNG")  # a code host shows this figure instead of the widget's class name
    value.value = -2.0
    assert base64.b64decode(box._repr_mimebundle_()["image/png"]) != first  # the picture follows the sliders
