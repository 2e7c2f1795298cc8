"""Figures and the toy explorer work without a front end, and the explorer retrains when a control changes."""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib

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


def test_explorer_shows_the_given_result_then_retrains_when_a_slider_moves():
    config = toy.ToyConfig(steps=20, snapshots=1)
    initial = toy.train_toy(config)
    box = figures.toy_explorer(config, initial=initial)
    status = next(w for w in box.children if isinstance(w, widgets.Label))
    assert status.value == f"score: {initial.score()}"
    sliders = [w for w in _controls(box) if isinstance(w, (widgets.IntSlider, widgets.FloatLogSlider))]
    assert sliders and not any(s.continuous_update for s in sliders), "dragging must not retrain on every pixel"
    g_steps = next(w for w in _controls(box) if w.description == "G steps")
    g_steps.value = 3
    expected = toy.train_toy(toy.ToyConfig(steps=20, snapshots=1, g_steps=3)).score()
    assert status.value == f"score: {expected}" != f"score: {initial.score()}"
