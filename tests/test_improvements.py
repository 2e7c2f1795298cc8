"""The methods of the MNIST quality table (benchmarks/README.md) that are not in the other tests: top-k generator
updates, a learning-rate decay, an extra stride-1 layer, discriminator rejection sampling."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dcgan_utils.engine import training
from dcgan_utils.engine.config import ARCHITECTURE, SIZES, TrainConfig
from dcgan_utils.engine.models import Discriminator, Generator, count_parameters
from dcgan_utils.engine.run_state import build_state
from dcgan_utils.engine.training import g_step, top_k_count, train_gan
from dcgan_utils.evaluation.rejection import acceptance, rejection_sample
from helpers import tiny_config, tiny_data


def test_top_k_shrinks_by_one_percent_per_epoch_down_to_its_floor():
    half = TrainConfig(top_k=0.5)  # 128 * 0.99**epoch, rounded: 128, 127, 116 (epoch 10), 64 from epoch 69 on
    assert [top_k_count(half, e, 128) for e in (0, 1, 10, 68, 69, 200)] == [128, 127, 116, 65, 64, 64]
    assert top_k_count(TrainConfig(), 200, 128) == 128  # top_k 1: off
    assert top_k_count(TrainConfig(top_k=0.3), 0, 10) == 10
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="top_k must be in"):
            TrainConfig(top_k=bad)


def test_top_k_g_loss_counts_only_the_fakes_d_finds_most_real():
    state = build_state(tiny_config(top_k=0.25, precision="fp32"))
    state.epoch = 1000  # long past the decay: k is the floor, 8 of 32
    fake = state.G(torch.randn(32, 16, generator=torch.Generator().manual_seed(0))).detach()
    logits = state.D(fake).detach()  # BatchNorm in training mode: the same batch gives the same logits in g_step
    best = logits.sort(descending=True).values[:8]
    expected = F.softplus(-best).mean()  # non-saturating: -log sigmoid(logit) over the kept fakes
    assert g_step(state, fake)["g_loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert expected.item() < F.softplus(-logits).mean().item()  # the kept fakes are the ones D likes best


def _lrs_seen(monkeypatch, config):
    """Train config on tiny data and return (G's lr, D's lr) as each step began."""
    seen = []
    step = training.train_step
    monkeypatch.setattr(training, "train_step", lambda s, *a: seen.append(
        (s.opt_g.param_groups[0]["lr"], s.opt_d.param_groups[0]["lr"])) or step(s, *a))
    train_gan(config, tiny_data(), progress=False)
    return seen


def test_lr_decay_falls_linearly_to_zero_over_the_runs_steps(monkeypatch):
    seen = _lrs_seen(monkeypatch, tiny_config(lr_decay=True, epochs=0, max_steps=8, max_minutes=0, lr=2e-4, d_lr=4e-4))
    g, d = zip(*seen)
    assert g == pytest.approx([2e-4 * (1 - s / 8) for s in range(8)])
    assert d == pytest.approx([4e-4 * (1 - s / 8) for s in range(8)])
    plain = _lrs_seen(monkeypatch, tiny_config(epochs=0, max_steps=3, max_minutes=0))
    assert {lr for lr, _ in plain} == {2e-4}  # off by default


def test_lr_decay_over_a_time_budget_follows_the_runs_training_time(monkeypatch):
    clock = {"t": 0.0}

    def tick():  # every reading of the trainer's clock: one second later
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(training.time, "perf_counter", tick)
    seen = _lrs_seen(monkeypatch, tiny_config(lr_decay=True, epochs=0, max_steps=10_000, max_minutes=0.5, d_lr=1e-3))
    g, d = zip(*seen)
    assert all(a > b for a, b in zip(g, g[1:])) and g[0] > 0.9 * 2e-4 and g[-1] < 0.2 * 2e-4
    assert d == pytest.approx([5 * lr for lr in g])  # both rates by one factor


@pytest.mark.parametrize("size", SIZES)
def test_extra_layer_adds_one_shape_keeping_3x3_convolution_to_g_and_d(size):
    w = 8
    for plain, extra, x in ((Generator(size, 1, 16, w), Generator(size, 1, 16, w, extra_layer=True), torch.randn(4, 16)),
                            (Discriminator(size, 1, w), Discriminator(size, 1, w, extra_layer=True),
                             torch.randn(4, 1, size, size))):
        assert extra(x).shape == plain(x).shape
        assert count_parameters(extra) - count_parameters(plain) == 9 * w * w + 2 * w  # conv + BatchNorm's scale, shift
        added = [m for m in extra.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert len(added) == 1 and added[0].stride == (1, 1) and added[0].in_channels == added[0].out_channels == w
    assert "extra_layer" in ARCHITECTURE and TrainConfig(extra_layer=True).run_key() != TrainConfig().run_key()
    assert count_parameters(build_state(tiny_config(extra_layer=True)).D) > count_parameters(build_state(tiny_config()).D)


def test_rejection_acceptance_matches_hand_computed_values():
    # F = gap - log(1 - exp(gap - 1e-6)) for gaps 0, -1, -2: 13.8155, -0.5413, -1.8546; gamma (median) -0.5413
    p = acceptance(torch.tensor([0.0, -1.0, -2.0]), best=0.0, percentile=50)
    torch.testing.assert_close(p, torch.tensor([0.9999994, 0.5, 0.2119416]), atol=1e-6, rtol=1e-5)


class _Brightness(nn.Module):
    """A stand-in D that finds bright images real: its logit is the mean pixel, scaled so that the untrained G's
    images (means within about 1e-4 of each other) get logits a few units apart."""

    def forward(self, x, labels=None):
        return 1e5 * x.flatten(1).mean(1)


def test_rejection_sampling_keeps_what_d_finds_real_and_refuses_runs_it_cannot_read():
    state = build_state(tiny_config(ema=0.0))
    plain = torch.cat([state.G.eval()(torch.randn(500, 16)) for _ in range(4)]).detach()
    state.D = _Brightness()
    kept, share = rejection_sample(state, 1000, percentile=80, batch=500, burn_in=1000)
    assert kept.shape == (1000, 1, 28, 28) and 0.05 < share < 0.9
    assert kept.mean() > plain.mean() + 0.5 * plain.flatten(1).mean(1).std()  # brighter on average
    for changes, match in ((dict(num_classes=10), "conditional"), (dict(loss="hinge"), "BCE loss"),
                           (dict(real_label=0.9), "real_label 0.9")):
        with pytest.raises(ValueError, match=match):
            rejection_sample(build_state(tiny_config(**changes)), 10)


def test_the_methods_train_end_to_end_and_keep_their_settings_on_resume(tmp_path):
    config = tiny_config(top_k=0.5, lr_decay=True, extra_layer=True, max_minutes=0, epochs=1)
    state = train_gan(config, tiny_data(), tmp_path, progress=False)
    again = train_gan(TrainConfig(**{**config.to_dict(), "epochs": 2}), tiny_data(), tmp_path, resume=True,
                      progress=False)
    assert (state.step, again.step) == (8, 16) and torch.isfinite(torch.tensor(again.history["g_loss"])).all()
    with pytest.raises(ValueError, match="extra_layer"):
        train_gan(tiny_config(max_minutes=0, epochs=3), tiny_data(), tmp_path, resume=True, progress=False)
