"""Figures and the toy explorer work without a front end, and the explorer retrains when a control changes."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib
import torch

matplotlib.use("Agg")

from dcgan_utils.course import figures, toy  # noqa: E402


def _controls(box):
    return [w for row in box.children if isinstance(row, widgets.HBox) for w in row.children]


def test_plot_toy_draws_one_panel_per_snapshot_for_both_problems():
    for problem in toy.PROBLEMS:
        result = toy.train_toy(toy.ToyConfig(problem=problem, steps=30, snapshots=3))
        fig = figures.plot_toy(result)
        panels = [ax for ax in fig.axes if ax.get_title()]
        assert [ax.get_title().split(",")[0] for ax in panels] == ["step 10", "step 20", "step 30"]
        matplotlib.pyplot.close(fig)


def test_every_curve_a_learner_must_read_is_named_in_a_legend():
    """Notebook 01's figures: the 1-D snapshots' red D(x) curve (on a second axis) was missing from the legend, the
    curves figure said d_real and d_fake, and the paths' black starting dots had no label."""
    result = toy.train_toy(toy.ToyConfig(problem="1d", steps=20, snapshots=2))
    fig = figures.plot_toy(result)
    first = fig.axes[0]
    assert [t.get_text() for t in first.get_legend().get_texts()] == ["p_data", "p_g (samples)", "D(x)"]
    assert [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel()] == ["D(x)"]  # the red axis, once
    matplotlib.pyplot.close(fig)
    fig = figures.plot_curves(result.history)
    assert [[t.get_text() for t in ax.get_legend().get_texts()] for ax in fig.axes] == [["d_loss", "g_loss"],
                                                                                        ["D(x)", "D(G(z))"]]
    matplotlib.pyplot.close(fig)
    fig = figures.plot_paths({"a": torch.zeros(3, 2) + 1, "b": torch.ones(3, 2)})
    assert "start" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    matplotlib.pyplot.close(fig)


def test_explorer_shows_the_given_result_then_retrains_when_a_slider_moves():
    config = toy.ToyConfig(steps=20, snapshots=1)
    initial = toy.train_toy(config)
    box = figures.toy_explorer(config, initial=initial)
    status = next(w for w in box.children if isinstance(w, widgets.Label))
    title = next(ax.get_title() for ax in figures.plot_toy(initial).axes if ax.get_title().startswith("step"))
    matplotlib.pyplot.close("all")
    modes = title.split(", ")[1].split("/")[0]  # "step 20, 3/8 modes": the panel the status sits above
    assert status.value.startswith(f"at step 20: {modes} of 8 modes covered, ")  # once "score: {'modes': 6, ...}"
    sliders = [w for w in _controls(box) if isinstance(w, (widgets.IntSlider, widgets.FloatLogSlider))]
    assert sliders and not any(s.continuous_update for s in sliders), "dragging must not retrain on every pixel"
    g_steps = next(w for w in _controls(box) if w.description == "G steps")
    g_steps.value = 3
    expected = toy.train_toy(toy.ToyConfig(steps=20, snapshots=1, g_steps=3))
    assert status.value == figures.explorer_status(expected) != figures.explorer_status(initial)


def test_both_explorers_set_their_figure_as_the_output_widgets_content_from_the_kernel():
    """`with out: plt.show()` sent each figure to the front end as the cell's output, and a headless run (nbclient)
    then sometimes hung writing it back (jupyter/nbclient#312): the figure is now the widget's own state, one PNG,
    replaced (not appended to) on each redraw, and nothing is left open in matplotlib."""
    import base64

    import torch

    from dcgan_utils.course.latent import latent_explorer

    def shown(out) -> bytes:
        (only,) = out.outputs  # one figure, replaced on each redraw
        assert only["output_type"] == "display_data"
        png = base64.b64decode(only["data"]["image/png"])
        assert png.startswith(b"\x89PNG")
        return png

    config = toy.ToyConfig(steps=10, snapshots=1)
    box = figures.toy_explorer(config, initial=toy.train_toy(config))
    out = next(w for w in box.children if isinstance(w, widgets.Output))
    first = shown(out)
    next(w for w in _controls(box) if w.description == "G steps").value = 2
    assert shown(out) != first
    z0, z1 = torch.randn(2, 16, generator=torch.Generator().manual_seed(0))
    box = latent_explorer(lambda z: torch.tanh(z[:, :16].reshape(-1, 1, 4, 4)), z0, z1)
    out = box.children[1]
    first = shown(out)
    box.children[0].children[2].value = 2.5
    assert shown(out) != first and box.png == shown(out)
    assert not matplotlib.pyplot.get_fignums()


def _boxes_overlap(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def test_the_neighbour_figure_labels_both_rows_and_puts_each_distance_clear_of_the_top_row():
    import torch

    g = torch.Generator().manual_seed(0)
    samples = torch.rand(10, 1, 28, 28, generator=g) * 2 - 1
    distances = torch.rand(10, generator=g) * 10
    fig = figures.plot_neighbours(samples, samples.flip(0), distances)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    axes = [ax for ax in fig.axes if ax.images]
    top, bottom = axes[:10], axes[10:]
    assert top[0].get_ylabel() and bottom[0].get_ylabel(), "each row says what it shows"
    for ax, d in zip(bottom, distances):
        texts = [t for t in (ax.xaxis.label, ax.title) if t.get_text()]
        assert [t.get_text() for t in texts] == [f"{d:.1f}"]
        box = texts[0].get_window_extent(renderer)
        assert not any(_boxes_overlap(box, other.get_window_extent(renderer)) for other in axes)
    matplotlib.pyplot.close(fig)


def test_the_class_share_legend_covers_no_bar():
    shares = {"generated": [0.09, 0.12, 0.1, 0.08, 0.1, 0.11, 0.1, 0.1, 0.09, 0.11],
              "real test digits": [0.098, 0.113, 0.103, 0.101, 0.098, 0.089, 0.096, 0.103, 0.097, 0.101]}
    fig = figures.plot_class_shares(shares, [f"{i} - digit" for i in range(10)], "class coverage")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent(renderer)
    assert len(ax.patches) == 20
    assert not any(_boxes_overlap(legend, bar.get_window_extent(renderer)) for bar in ax.patches)
    assert fig.bbox.contains(legend.x1 - 1, legend.y0 + 1), "the legend stays inside the figure"
    matplotlib.pyplot.close(fig)


def test_class_names_under_the_bars_do_not_overlap():
    """CIFAR-10's names are long: 'airplane' and 'automobile' ran into each other in notebook 05's chart."""
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    fig = figures.plot_class_shares({"generated": [0.1] * 10, "real test images": [0.1] * 10}, names, "coverage")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    labels = [t.get_window_extent(renderer) for t in fig.axes[0].get_xticklabels()]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == names
    assert not any(_boxes_overlap(a, b) for a, b in zip(labels, labels[1:]))
    assert all(fig.bbox.contains(box.x0 + 1, box.y0 + 1) for box in labels), "a name is cut off at the edge"
    matplotlib.pyplot.close(fig)


def test_a_long_legend_of_paths_covers_no_path():
    """Notebook 06's Dirac-GAN figure: six spiralling paths; its legend sat on the paths' lower right."""
    t = torch.linspace(0, 12, 400)
    paths = {f"path {k}": torch.stack([(1 + k / 3) * torch.cos(t) * (1 - t / 30), (1 + k / 3) * torch.sin(t) * (1 - t / 30)], 1)
             for k in range(6)}
    fig = figures.plot_paths(paths, "spirals")
    fig.canvas.draw()
    (ax,) = fig.axes
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    for line in ax.get_lines():
        points = ax.transData.transform(line.get_xydata())
        inside = ((points[:, 0] > legend.x0) & (points[:, 0] < legend.x1) & (points[:, 1] > legend.y0)
                  & (points[:, 1] < legend.y1))
        assert not inside.any(), f"the legend covers {line.get_label()}"
    assert fig.bbox.contains(legend.x1 - 1, legend.y0 + 1), "the legend stays inside the figure"
    star = next(c for c in ax.collections if c.get_label() == "equilibrium (0, 0)")
    path_colours = {matplotlib.colors.to_hex(line.get_color()) for line in ax.get_lines()}
    assert matplotlib.colors.to_hex(star.get_facecolor()[0]) not in path_colours  # the star is not one of the paths
    matplotlib.pyplot.close(fig)


def test_remedy_bars_draw_each_mean_its_seed_range_and_shares_in_percent():
    means = {"plain": {"confident": 0.5, "confident_range": (0.48, 0.52), "frechet": 100.0, "frechet_range": (90, 110)},
             "R1": {"confident": 0.4, "confident_range": (0.39, 0.41), "frechet": 90.0, "frechet_range": (88, 92)}}
    fig = figures.plot_remedy_bars(means, {"confident": "confident", "frechet": "Frechet"}, percent=("confident",))
    fig.canvas.draw()
    shares, frechet = fig.axes
    assert [bar.get_width() for bar in shares.patches] == [0.5, 0.4]
    assert [list(line.get_xdata()) for line in frechet.get_lines()] == [[90, 110], [88, 92]]
    assert all(t.get_text().endswith("%") for t in shares.get_xticklabels() if t.get_text())
    assert not any(t.get_text().endswith("%") for t in frechet.get_xticklabels())
    matplotlib.pyplot.close(fig)


def test_paths_with_dashes_tell_every_pair_apart_by_colour_or_style():
    """Notebook 06's six Dirac-GAN paths: red (noise) and brown (WGAN-GP, alternating) were hard to tell apart in one
    line style; with dashes=True no two paths share both colour and style. Without it, the style stays solid."""
    paths = {f"path {k}": torch.rand(5, 2) for k in range(6)}
    for dashes in (True, False):
        fig = figures.plot_paths(paths, "six", dashes=dashes)
        (ax,) = fig.axes
        looks = [(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle()) for line in ax.get_lines()]
        if dashes:
            assert len({style for _, style in looks}) == 4  # the styles cycle; the colours alone already differ
            assert looks[3][1] != looks[5][1]  # the two reddish ones (C3, C5) differ in style
        else:
            assert {style for _, style in looks} == {"-"}
        matplotlib.pyplot.close(fig)
