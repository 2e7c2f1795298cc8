"""Walking the latent space: spherical interpolation, one coordinate at a time, and an ipywidgets explorer.

z ~ N(0, I) in 100 dimensions lies near a sphere of radius sqrt(100) = 10: a straight line between two samples
passes through the inside, where G never saw noise during training (the midpoint of two independent samples has
norm about 10 / sqrt(2)). Spherical interpolation (slerp) keeps the norm and stays where G was trained.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid

from dcgan_utils.course.figures import show_in


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between noise vectors (..., d) at fraction t; linear when they are parallel."""
    a, b = z0.double(), z1.double()
    cos = (a * b).sum(-1, keepdim=True) / (a.norm(dim=-1, keepdim=True) * b.norm(dim=-1, keepdim=True))
    omega = torch.arccos(cos.clamp(-1, 1))  # angle between the two vectors
    sin = torch.sin(omega)
    parallel = sin.abs() < 1e-8
    safe = torch.where(parallel, torch.ones_like(sin), sin)
    curved = (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / safe
    return torch.where(parallel, (1 - t) * a + t * b, curved).to(z0.dtype)


def interpolation(z0: torch.Tensor, z1: torch.Tensor, steps: int, spherical: bool = True) -> torch.Tensor:
    """(steps, d) noise vectors from z0 to z1 (both ends included), along the sphere or the straight line."""
    ts = torch.linspace(0, 1, steps)
    return torch.stack([slerp(z0, z1, t.item()) if spherical else (1 - t) * z0 + t * z1 for t in ts])


def coordinate_sweep(z: torch.Tensor, coordinate: int, values: torch.Tensor) -> torch.Tensor:
    """(len(values), d) copies of z with one coordinate set to each value in turn."""
    if not 0 <= coordinate < z.shape[-1]:
        raise ValueError(f"coordinate must be in [0, {z.shape[-1]}), got {coordinate}")
    out = z.reshape(1, -1).repeat(len(values), 1)
    out[:, coordinate] = values.to(z.dtype)
    return out


def show_images(images: torch.Tensor, nrow: int, title: str = "", ax: plt.Axes | None = None) -> plt.Axes:
    """A grid of images in [-1, 1] (N, C, H, W) on a matplotlib axis."""
    grid = make_grid(images.detach().float().cpu(), nrow=nrow, normalize=True, value_range=(-1, 1), pad_value=1)
    ax = ax or plt.subplots(figsize=(nrow * 0.6 + 0.5, (len(images) + nrow - 1) // nrow * 0.6 + 0.5))[1]
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return ax


def latent_figure(draw: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, z1: torch.Tensor, t: float,
                  coordinate: int, value: float, steps: int = 9) -> plt.Figure:
    """Three rows: the slerp path from z0 to z1, the image at t (large), and coordinate `coordinate` swept."""
    point = slerp(z0, z1, t)
    fig = plt.figure(figsize=(9, 3.6))
    top, left, right = fig.add_subplot(2, 3, (1, 3)), fig.add_subplot(2, 3, 4), fig.add_subplot(2, 3, (5, 6))
    show_images(draw(interpolation(z0, z1, steps)), steps, "slerp from z0 (left) to z1 (right)", top)
    sweep = coordinate_sweep(point, coordinate, torch.linspace(-3, 3, steps))
    here = coordinate_sweep(point, coordinate, torch.tensor([value]))
    show_images(draw(here), 1, f"t = {t:.2f}, z[{coordinate}] = {value:+.2f}", left)
    show_images(draw(sweep), steps, f"z[{coordinate}] from -3 to +3 at t = {t:.2f}", right)
    fig.tight_layout()
    return fig


def latent_explorer(draw: Callable[[torch.Tensor], torch.Tensor], z0: torch.Tensor, z1: torch.Tensor,
                    t: float = 0.5, coordinate: int = 0):
    """Sliders for t (between z0 and z1), a coordinate and its value, above the figure they draw; an ipywidgets VBox.

    `draw` maps noise (N, d) to images (N, C, H, W) in [-1, 1], for example `lambda z: generate(state, z)`. The value
    starts at the coordinate's own value at t, so the first figure shows the path's own point. Displayed, the box
    also carries its current figure as a PNG and a one-line description: a viewer that cannot run widgets (a code
    host, a notebook opened without its widget state) shows that figure instead of the widget's class name.
    """
    import ipywidgets as widgets  # imported here: the rest of the package works without a front end

    class Explorer(widgets.VBox):
        png = b""  # the figure last drawn, for viewers without widgets

        def __repr__(self) -> str:
            return ("latent explorer: sliders t, coordinate and value, above the figure they draw "
                    "(run the notebook to move them)")

        def _repr_mimebundle_(self, **kwargs):
            bundle = super()._repr_mimebundle_(**kwargs)
            if self.png:
                bundle["image/png"] = base64.b64encode(self.png).decode("ascii")
            return bundle

    start = float(slerp(z0, z1, t)[coordinate])
    t = widgets.FloatSlider(value=t, min=0, max=1, step=0.05, description="t", continuous_update=False)
    coordinate = widgets.IntSlider(value=coordinate, min=0, max=z0.shape[-1] - 1, description="coordinate",
                                   continuous_update=False)
    value = widgets.FloatSlider(value=round(start, 2), min=-3, max=3, step=0.01, description="value",
                                continuous_update=False)
    out = widgets.Output()
    box = Explorer([widgets.HBox([t, coordinate, value]), out])

    def redraw(_change=None) -> None:
        box.png = show_in(out, latent_figure(draw, z0, z1, t.value, coordinate.value, value.value))

    for w in (t, coordinate, value):
        w.observe(redraw, names="value")
    redraw()
    return box
