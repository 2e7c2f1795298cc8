"""Figures the notebooks share: toy-GAN snapshots, training curves, the toy explorer widget, class shares,
nearest neighbours and the failure meters of saved grids."""

from __future__ import annotations

import base64
import io
from dataclasses import replace

import matplotlib.pyplot as plt
from matplotlib.ticker import PercentFormatter
import torch

from dcgan_utils.engine.config import BCE_KINDS, LOSS_KINDS
from dcgan_utils.course.toy import (ONE_D, RING_MODES, ToyConfig, ToyResult, d_grid_points, ring_centres, ring_coverage,
                                    train_toy)


CURVE_LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))"}  # history keys of D's mean outputs, as the prose writes them


def plot_toy(result: ToyResult, title: str | None = None) -> plt.Figure:
    """One panel per snapshot: p_data, G's samples and D's output (1-D curve, or contours on the ring)."""
    snaps = result.snapshots
    if any(s["d_grid"] is None for s in snaps):
        raise ValueError("this run's D scores points only within a batch (minibatch_std), so D(x) has no map over "
                         "the plane: draw its samples with plot_ring_runs instead")
    fig, axes = plt.subplots(1, len(snaps), figsize=(3.2 * len(snaps), 3.0), squeeze=False)
    where = d_grid_points(result.config.problem)
    bce = result.config.loss in BCE_KINDS
    if bce:  # one colour scale for every panel: D(x) in [0, 1], 1/2 in the middle
        levels = torch.linspace(0, 1, 11).tolist()
    else:  # raw critic scores: one scale spanning every snapshot
        low = min(s["d_grid"].min().item() for s in snaps)
        high = max(s["d_grid"].max().item() for s in snaps)
        levels = torch.linspace(low, max(high, low + 1e-6), 11).tolist()
    shading = None
    for ax, snap in zip(axes[0], snaps):
        d = (torch.sigmoid(snap["d_grid"]) if bce else snap["d_grid"]).numpy()  # numpy: matplotlib 3.8 iterates tensors
        samples = snap["samples"].numpy()
        if result.config.problem == "1d":
            x = where.squeeze(1)
            ax.plot(x.numpy(), ONE_D.pdf(x.double()).numpy(), "k", label="p_data")
            ax.hist(samples[:, 0].clip(-5, 5), bins=80, range=(-5, 5), density=True,
                    alpha=0.5, label="p_g (samples)")
            twin = ax.twinx()
            twin.plot(x.numpy(), d, "C3", label="D(x)" if bce else "D(x) raw")
            if bce:
                twin.set_ylim(0, 1)
            twin.tick_params(labelsize=7, colors="C3")
            if ax is axes[0][-1]:  # the red axis, named once, on the right
                twin.set_ylabel("D(x)" if bce else "D(x) raw", color="C3", fontsize=8)
            if ax is axes[0][0]:  # one legend for the three curves, the red one on the other axis included
                lines = ax.get_legend_handles_labels()
                red = twin.get_legend_handles_labels()
                ax.legend(lines[0] + red[0], lines[1] + red[1], fontsize=7, loc="upper left")
            ax.set_xlim(-5, 5)
            caption = ""
        else:
            n = int(len(where) ** 0.5)
            shading = ax.contourf(where[:, 0].view(n, n).numpy(), where[:, 1].view(n, n).numpy(), d.reshape(n, n),
                                  levels=levels,
                                  cmap="RdBu_r", alpha=0.5)
            ax.scatter(*samples.T, s=1, alpha=0.3, color="C0")
            ax.scatter(*ring_centres().numpy().T, marker="x", color="k", s=25)
            ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
            caption = f", {ring_coverage(snap['samples'])[0]}/{RING_MODES} modes"
        ax.set_title(f"step {snap['step']}{caption}", fontsize=9)
        ax.tick_params(labelsize=7)
    fig.suptitle(title or f"{result.config.problem}: loss {result.config.loss}", fontsize=10)
    fig.tight_layout()
    if shading is not None:  # the ring: one colourbar for the shared scale
        fig.colorbar(shading, ax=axes[0].tolist(), shrink=0.8, pad=0.02).set_label("D(x)" if bce else "D(x) raw",
                                                                                   fontsize=8)
    return fig


def plot_curves(history: dict[str, list[float]], keys: tuple[str, ...] = ("d_loss", "g_loss", "d_real", "d_fake"),
                title: str = "") -> plt.Figure:
    """Training curves: losses on the left, D's mean outputs on real and generated samples on the right."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3))
    for key in keys:
        ax = left if key.endswith("loss") else right
        ax.plot(history[key], label=CURVE_LABELS.get(key, key), lw=0.8)
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
    outputs = [v for key in keys if not key.endswith("loss") for v in history[key]]
    if outputs and 0 <= min(outputs) and max(outputs) <= 1:  # probabilities (a critic's raw scores keep their range)
        right.set_ylim(0, 1)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_paths(paths: dict[str, torch.Tensor], title: str = "",
               axes: tuple[str, str] = ("x (minimises xy)", "y (maximises xy)"), dashes: bool = False) -> plt.Figure:
    """Trajectories in a plane, one line per label, starting points marked; `axes` names the two coordinates;
    dashes: line styles cycle too, for paths that overlap or have similar colours."""
    beside = len(paths) > 2  # a long legend inside the axes would cover the paths: put it beside them
    fig, ax = plt.subplots(figsize=(7.5 if beside else 4.5, 4.5))
    starts = []
    for i, (label, path) in enumerate(paths.items()):
        path = torch.as_tensor(path).detach().cpu().numpy()  # matplotlib 3.8 (the floor) takes no tensors
        ax.plot(path[:, 0], path[:, 1], lw=0.8, label=label, ls=("-", "--", "-.", ":")[i % 4] if dashes else "-")
        starts.append(path[0])
    ax.scatter(*zip(*starts), s=20, color="k", zorder=3, label="start")
    ax.scatter([0], [0], marker="*", s=120, color="gold", edgecolors="k", linewidths=0.6, zorder=3,
               label="equilibrium (0, 0)")  # a colour no path takes (paths cycle C0, C1, ...)
    ax.set(aspect="equal", xlabel=axes[0], ylabel=axes[1])
    ax.set_title(title, fontsize=10)
    if beside:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_in(out, fig: plt.Figure) -> bytes:
    """Put fig into the ipywidgets Output `out` in place of what it showed, as a PNG set from the kernel; close fig.

    Not `with out: plt.show()`: that sends the figure to the front end as the cell's output, tagged for the widget,
    and a headless run (nbclient: papermill, nbconvert) then writes the widget's content back to the kernel over the
    channel on which it is waiting for the cell's reply; 1 in 12 nbconvert runs of a two-cell notebook holding one
    explorer never finished here (jupyter/nbclient#312). Returns the PNG.
    """
    picture = io.BytesIO()
    fig.savefig(picture, format="png", bbox_inches="tight")  # as the inline backend draws it
    text = repr(fig)  # "<Figure size ... with N Axes>", as plt.show() would have written
    plt.close(fig)
    png = picture.getvalue()
    out.outputs = ({"output_type": "display_data", "metadata": {},
                    "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}},)
    return png


def toy_explorer(config: ToyConfig, initial: ToyResult | None = None):
    """Sliders for the toy GAN (loss, learning rates, D and G steps, seed): changing one retrains and redraws.

    The first view shows `initial` when given (no training at display time); returns an ipywidgets VBox.
    """
    import ipywidgets as widgets  # imported here: the rest of the package works without a front end

    controls = {
        "loss": widgets.Dropdown(options=LOSS_KINDS, value=config.loss, description="loss"),
        "lr_g": widgets.FloatLogSlider(value=config.lr_g, base=10, min=-5, max=-1, description="lr G",
                                       continuous_update=False, readout_format=".0e"),
        "lr_d": widgets.FloatLogSlider(value=config.lr_d, base=10, min=-5, max=-1, description="lr D",
                                       continuous_update=False, readout_format=".0e"),
        "d_steps": widgets.IntSlider(value=config.d_steps, min=1, max=5, description="D steps",
                                     continuous_update=False),
        "g_steps": widgets.IntSlider(value=config.g_steps, min=1, max=5, description="G steps",
                                     continuous_update=False),
        "seed": widgets.IntText(value=config.seed, description="seed"),
    }
    out = widgets.Output()
    status = widgets.Label()

    def show(result: ToyResult) -> None:
        show_in(out, plot_toy(result))
        status.value = explorer_status(result)

    def retrain(_change=None) -> None:
        status.value = "training ..."
        show(train_toy(replace(config, **{k: w.value for k, w in controls.items()})))

    for w in controls.values():
        w.observe(retrain, names="value")
    if initial is not None:
        show(initial)
    else:
        retrain()
    return widgets.VBox([widgets.HBox(list(controls.values())[:3]), widgets.HBox(list(controls.values())[3:]),
                         status, out])


def explorer_status(result: ToyResult) -> str:
    """The explorer's line under its controls, in words, measured on the samples of the last panel (a fresh draw could
    count a borderline mode differently from the panel's title above it)."""
    if result.config.problem == "ring":  # ToyConfig keeps at least one snapshot, the last at the final step
        last = result.snapshots[-1]
        modes, good = ring_coverage(last["samples"])
        return (f"at step {last['step']}: {modes} of {RING_MODES} modes covered, {good:.0%} of the samples within 3 "
                "standard deviations of a mode centre")
    return f"at the end: earth mover's distance from p_data {result.score()['emd']:.3f} (0 would be a perfect match)"


def plot_class_shares(shares: dict[str, list[float]], classes: list[str] | tuple[str, ...], title: str = ""
                      ) -> plt.Figure:
    """Bars of the share of images per class, one colour per named set (e.g. generated vs real test images)."""
    fig, ax = plt.subplots(figsize=(8, 2.8))
    width = 0.8 / len(shares)
    for i, (name, values) in enumerate(shares.items()):
        ax.bar(torch.arange(len(values)) + (i - (len(shares) - 1) / 2) * width, values, width, label=name)
    ax.axhline(1 / len(classes), color="grey", lw=0.8, ls="--", label="uniform")
    names = [c.split(" - ")[0] for c in classes]
    ax.set_xticks(range(len(classes)), names)
    if max(map(len, names)) > 5:  # CIFAR-10's names side by side would run into each other: every other one lower
        for tick in ax.xaxis.get_major_ticks()[1::2]:
            tick.set_pad(14)
    ax.set(ylabel="share of images", title=title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0)  # beside the bars, never on them
    fig.tight_layout()
    return fig


def plot_neighbours(samples: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor) -> plt.Figure:
    """Top row: generated images; bottom row: the nearest training image of each, with the pixel distance below it."""
    n = len(samples)
    fig, axes = plt.subplots(2, n, figsize=(1.1 * n + 0.9, 2.9), squeeze=False)
    for i in range(n):
        for row, image in ((0, samples[i]), (1, neighbours[i])):
            ax = axes[row][i]
            ax.imshow(((image.float().cpu() + 1) / 2).clamp(0, 1).permute(1, 2, 0).squeeze(-1),
                      cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
        axes[1][i].set_xlabel(f"{distances[i]:.1f}", fontsize=8)  # below its own image, clear of the top row
    axes[0][0].set_ylabel("generated", fontsize=8)
    axes[1][0].set_ylabel("nearest\ntraining", fontsize=8)
    fig.suptitle("generated (top) and the nearest of the training images (bottom, pixel distance below)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_grid_meters(runs: dict[str, dict[str, list]], real: dict[str, float], title: str = "") -> plt.Figure:
    """Diversity (left) and checkerboard share (right, log scale) of each run's saved grids against the step, with
    the real images' values as dashed lines; `runs` maps a name to `diagnostics.grid_meters` output."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for ax, key, label in zip(axes, ("diversity", "checkerboard"), ("diversity (RMS distance)", "checkerboard share")):
        for name, meters in runs.items():
            ax.plot(meters["step"], meters[key], marker=".", lw=1, label=name)
        ax.axhline(real[key], color="grey", ls="--", lw=1, label="real images")
        ax.set(xlabel="step", ylabel=label)
    axes[1].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_ring_runs(runs: dict[str, ToyResult], n: int = 2000) -> plt.Figure:
    """One panel per toy ring run: n samples of its generator over the 8 mode centres, with its score."""
    fig, axes = plt.subplots(1, len(runs), figsize=(2.3 * len(runs), 2.6), squeeze=False)
    centres = ring_centres()
    for ax, (name, run) in zip(axes[0], runs.items()):
        fake = run.samples(n).numpy()
        ax.scatter(fake[:, 0], fake[:, 1], s=1, alpha=0.3)
        ax.scatter(centres[:, 0].numpy(), centres[:, 1].numpy(), marker="x", color="C3", s=25)
        score = run.score()
        ax.set_title(f"{name}\n{score['modes']} modes, good {score['good']:.2f}", fontsize=9)
        ax.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal", xticks=[], yticks=[])
    fig.tight_layout()
    return fig


def plot_remedy_bars(means: dict[str, dict[str, float]], keys: dict[str, str], title: str = "",
                     percent: tuple[str, ...] = ()) -> plt.Figure:
    """One panel per measure (keys: field -> axis title), one bar per remedy at its mean over seeds, and a line
    from the smallest to the largest seed's value; the measures in `percent` are shares, labelled in percent."""
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3.2), squeeze=False)
    names = list(means)
    for ax, (key, label) in zip(axes[0], keys.items()):
        values = [means[m][key] for m in names]
        ax.barh(names, values, color="C0", alpha=0.7)
        for y, m in enumerate(names):
            ax.plot(means[m][key + "_range"], [y, y], color="k", lw=1.5)
        ax.set_title(label, fontsize=9)
        if key in percent:
            ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.invert_yaxis()
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
