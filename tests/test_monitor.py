"""The live view and the GIF: smoothing against a plain loop, GIF frames against the grids they were made from."""

import matplotlib.pyplot as plt
import pytest
import torch
import numpy as np
from PIL import Image, ImageSequence

from dcgan_utils.course.monitor import LiveView, grid_image, run_grids, save_gif, smooth, training_figure
from dcgan_utils.engine.training import train_gan
from helpers import tiny_config, tiny_data


@pytest.mark.parametrize("window", [1, 3, 25])
def test_smooth_is_the_running_mean_of_the_last_window_steps(window):
    values = torch.randn(40, generator=torch.Generator().manual_seed(0)).tolist()
    expected = [sum(values[max(0, i + 1 - window):i + 1]) / len(values[max(0, i + 1 - window):i + 1])
                for i in range(len(values))]
    assert torch.allclose(smooth(values, window), torch.tensor(expected, dtype=torch.float64))


def test_gif_frames_are_the_grids_in_order_and_the_last_one_stays_longer(tmp_path):
    g = torch.Generator().manual_seed(0)
    grids = [(step, torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=g)) for step in (10, 20, 30)]
    path = save_gif(grids, tmp_path / "sub" / "progress.gif", nrow=2, ms_per_frame=100, hold_last=2, min_width=0)
    with Image.open(path) as gif:
        frames = [(np.array(f.convert("RGB")), f.info["duration"]) for f in ImageSequence.Iterator(gif)]
    assert [duration for _, duration in frames] == [100, 100, 300]
    for (got, _), (_, images) in zip(frames, grids, strict=True):
        assert torch.equal(torch.from_numpy(got), grid_image(images, 2))  # grayscale fits a GIF palette exactly


def test_gif_without_grids_says_what_to_change(tmp_path):
    with pytest.raises(ValueError, match="sample_every"):
        save_gif([], tmp_path / "x.gif")


def test_training_figure_shows_the_latest_grid_and_every_curve():
    state = train_gan(tiny_config(max_steps=7), tiny_data(), progress=False)
    fig = training_figure(state, window=2)
    losses, outputs, grid = fig.axes
    assert [l.get_label() for l in losses.lines] == ["d_loss", "g_loss"] and len(losses.lines[0].get_xdata()) == 7
    assert grid.get_title() == "fixed noise, step 7"  # the last step's grid, not step 6's (sample_every 3)
    assert torch.equal(torch.from_numpy(grid.images[0].get_array().data), grid_image(state.grids[-1][1]))
    plt.close(fig)


def test_a_run_saved_without_its_last_grid_is_shown_with_the_grid_of_its_final_weights():
    # the shipped releases were saved when a run of 9,360 steps ended on the grid of step 8,800
    state = train_gan(tiny_config(max_steps=7), tiny_data(), progress=False)
    final = state.grids.pop()  # as an older engine saved it: [3, 6] for a run of 7 steps
    assert [s for s, _ in run_grids(state)] == [3, 6, 7] and torch.equal(run_grids(state)[-1][1], final[1])
    fig = training_figure(state)
    assert fig.axes[2].get_title() == "fixed noise, step 7"
    plt.close(fig)


def test_the_gif_is_enlarged_by_whole_pixels_to_a_legible_width(tmp_path):
    g = torch.Generator().manual_seed(0)
    grids = [(step, torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8, generator=g)) for step in (1, 2)]
    with Image.open(save_gif(grids, tmp_path / "progress.gif")) as gif:
        first = np.array(gif.convert("RGB"))
    small = grid_image(grids[0][1])  # 242 x 122 pixels: too small to read a digit in a browser
    assert first.shape[1] >= 500 and first.shape[1] % small.shape[1] == 0
    scale = first.shape[1] // small.shape[1]
    assert torch.equal(torch.from_numpy(first), small.repeat_interleave(scale, 0).repeat_interleave(scale, 1))


def test_live_view_outside_a_notebook_prints_one_line_per_epoch(capsys):
    view = LiveView(every_seconds=0)
    train_gan(tiny_config(epochs=2), tiny_data(), progress=False, callback=view)
    lines = capsys.readouterr().out.strip().splitlines()
    assert view.calls == 2 and [l.split(":")[0] for l in lines] == ["step 8", "step 16"]


def test_live_view_redraws_at_most_every_few_seconds_and_final_draws_the_end(capsys):
    """A smoke run of notebook 04 redrew its figure at all of its 60 epochs (its settings then); now at most once per every_seconds."""
    times = iter([0.0, 1.0, 2.9, 3.0, 4.0, 5.9])
    view = LiveView(every_seconds=3.0, clock=lambda: next(times))
    state = train_gan(tiny_config(epochs=1), tiny_data(), progress=False)
    capsys.readouterr()
    for step in range(1, 7):
        state.step = step
        view(state)
    view.final(state)
    lines = capsys.readouterr().out.strip().splitlines()
    assert view.calls == 6 and view.draws == 3  # drawn at 0.0 and 3.0, not at 5.9 (2.9 after), then by final
    assert [l.split(":")[0] for l in lines] == ["step 1", "step 4", "step 6"]
    with pytest.raises(ValueError, match="every_seconds"):
        LiveView(every_seconds=-1)
