"""The training engine: config checks, precision choice, exact resume, non-finite losses, history and grids."""

import dataclasses
import subprocess
import sys

import pytest
import torch

from dcgan_utils.engine import training
from dcgan_utils.engine.checkpoint import load_checkpoint
from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import to_uint8
from dcgan_utils.engine.device import auto_precision, cpu_flags, resolve_precision
from dcgan_utils.engine.run_state import generate
from dcgan_utils.engine.training import NonFiniteLossError, train_gan
from helpers import tiny_config, tiny_data


def test_config_defaults_are_the_papers():
    c = TrainConfig()
    assert (c.lr, c.d_lr, c.beta1, c.beta2, c.batch_size, c.latent_dim) == (2e-4, 2e-4, 0.5, 0.999, 128, 100)
    assert c.channels == 1 and TrainConfig(dataset="cifar10", image_size=32).channels == 3
    assert TrainConfig.from_dict(c.to_dict()) == c


def test_precision_auto_and_fp16_rules():
    cpu = torch.device("cpu")
    with pytest.raises(ValueError, match="fp16.*needs a CUDA GPU"):
        resolve_precision("fp16", cpu)
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


# flag sets of the three kinds of CPU seen here (trimmed to what matters), and of CPUs elsewhere
XEON_AMX = frozenset({"avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
EPYC_AVX512_BF16 = frozenset({"avx2", "avx512f", "avx512_bf16"})
EPYC_AVX2 = frozenset({"avx2", "fma"})
SKYLAKE_AVX512 = frozenset({"avx2", "avx512f", "avx512bw"})  # AVX-512 without bf16: oneDNN emulates bf16
APPLE_M = frozenset({"fp", "asimd", "bf16"})  # an ARM laptop's /proc/cpuinfo "Features"


@pytest.mark.parametrize("flags, expected", [(XEON_AMX, "bf16"), (EPYC_AVX512_BF16, "bf16"), (EPYC_AVX2, "fp32"),
                                             (SKYLAKE_AVX512, "fp32"), (APPLE_M, "fp32"), (frozenset(), "fp32")])
def test_auto_precision_on_a_cpu_is_bf16_only_where_the_cpu_computes_it_natively(flags, expected):
    assert auto_precision("cpu", flags=flags) == expected


@pytest.mark.parametrize("capability, expected", [((7, 0), "fp16"), ((7, 5), "fp16"), ((8, 0), "bf16"),
                                                  ((8, 6), "bf16"), ((9, 0), "bf16"), ((12, 0), "bf16")])
def test_auto_precision_on_cuda_is_bf16_from_ampere_on_and_fp16_before(capability, expected):
    assert auto_precision("cuda", capability) == expected  # V100 7.0, T4 7.5: bf16 only emulated there


def test_auto_precision_on_mps_and_the_machines_own_flags():
    assert auto_precision("mps") == "fp32"
    expected = "bf16" if {"avx512_bf16", "amx_bf16"} & cpu_flags() else "fp32"
    assert resolve_precision("auto", torch.device("cpu")) == expected


def _everything(state):
    """All tensors that define a run's future: weights, EMA, optimiser moments, noise state."""
    parts = {**{f"G.{k}": v for k, v in state.G.state_dict().items()},
             **{f"D.{k}": v for k, v in state.D.state_dict().items()},
             **{f"ema.{k}": v for k, v in state.ema.state_dict().items()}, "noise": state.noise.get_state()}
    for name, opt in (("opt_g", state.opt_g), ("opt_d", state.opt_d)):
        for i, s in opt.state_dict()["state"].items():
            parts.update({f"{name}.{i}.{k}": v for k, v in s.items()})
    return parts


@pytest.mark.parametrize("precision", ["fp32", "bf16", "auto"])  # bf16 runs on any CPU, natively or not
def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, precision):
    data = tiny_data()  # 8 batches per epoch: 11 steps cross an epoch boundary, the stop at 5 is mid-epoch
    straight = train_gan(tiny_config(max_steps=11, precision=precision), data, tmp_path / "a", progress=False)
    train_gan(tiny_config(max_steps=5, precision=precision), data, tmp_path / "b", progress=False)
    resumed = train_gan(tiny_config(max_steps=11, precision=precision), data, tmp_path / "b", resume=True,
                        progress=False)
    assert resumed.step == straight.step == 11
    a, b = _everything(straight), _everything(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs after resume"
    assert resumed.history == straight.history
    assert [s for s, _ in resumed.grids] == [s for s, _ in straight.grids] == [3, 6, 9, 11]  # 5: dropped on resume
    assert all(torch.equal(x, y) for (_, x), (_, y) in zip(resumed.grids, straight.grids))


def test_a_resume_trains_with_the_configs_learning_rates_not_the_checkpoints(tmp_path):
    """Adam's saved state holds its learning rate and betas; loading it once silently kept the old ones."""
    train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, progress=False)
    state = train_gan(tiny_config(max_steps=4, lr=1e-3, d_lr=5e-4, beta1=0.0, beta2=0.9), tiny_data(), tmp_path,
                      resume=True, progress=False)
    assert [(g["lr"], g["betas"]) for g in state.opt_g.param_groups] == [(1e-3, (0.0, 0.9))]
    assert [(g["lr"], g["betas"]) for g in state.opt_d.param_groups] == [(5e-4, (0.0, 0.9))]


def test_d_lr_0_freezes_d_while_g_trains():
    from dcgan_utils.engine.run_state import build_state
    from dcgan_utils.engine.data import to_model_range
    from dcgan_utils.engine.training import train_step

    state = build_state(tiny_config(d_lr=0.0, precision="fp32"))
    d_before = {k: v.clone() for k, v in state.D.state_dict().items() if "running" not in k and "num_batches" not in k}
    g_before = [p.detach().clone() for p in state.G.parameters()]
    for batch in to_model_range(tiny_data(64).images).split(32):
        train_step(state, batch)
    assert all(torch.equal(v, state.D.state_dict()[k]) for k, v in d_before.items())
    assert not all(torch.equal(a, b) for a, b in zip(g_before, state.G.parameters()))


def test_history_and_grids(tmp_path):
    state = train_gan(tiny_config(max_steps=10), tiny_data(), progress=False)
    assert all(len(v) == 10 for v in state.history.values())
    for key in ("d_real", "d_fake", "d_fake_g"):
        assert all(0 <= p <= 1 for p in state.history[key])
    assert [step for step, _ in state.grids] == [3, 6, 9, 10]  # every sample_every steps, and the last step
    grid = state.grids[-1][1]
    assert grid.shape == (8, 1, 28, 28) and grid.dtype == torch.uint8


def test_the_history_reads_d_as_its_loss_does_probabilities_for_bce_raw_scores_for_a_critic(monkeypatch):
    # a WGAN critic's history once read D(x) 1.00 and D(G(z)) 1.00: a sigmoid of raw scores, which means nothing
    seen = {}
    real_loss = training.discriminator_loss

    def spy(real_logits, fake_logits, kind, real_label):
        seen.setdefault(kind, []).append((real_logits.detach(), fake_logits.detach()))
        return real_loss(real_logits, fake_logits, kind, real_label)

    monkeypatch.setattr(training, "discriminator_loss", spy)
    for kind, changes in (("non_saturating", {}), ("hinge", {}),
                          ("wasserstein", dict(gradient_penalty=10.0, d_norm="layer", d_lr=1e-2))):
        h = train_gan(tiny_config(max_steps=4, loss=kind, **changes), tiny_data(), progress=False).history
        read = torch.sigmoid if kind == "non_saturating" else (lambda t: t)
        assert h["d_real"] == pytest.approx([read(r).mean().item() for r, _ in seen[kind]], rel=1e-5, abs=1e-6)
        assert h["d_fake"] == pytest.approx([read(f).mean().item() for _, f in seen[kind]], rel=1e-5, abs=1e-6)


def test_the_last_grid_is_drawn_by_the_final_weights_however_the_run_ends(tmp_path, monkeypatch):
    # a run of 10 steps with sample_every 3 once ended on the grid of step 9: a figure of the finished run showed
    # an older generator than the one it loaded
    for changes in (dict(max_steps=10), dict(epochs=1, max_steps=0)):  # a step limit; an epoch of 8 steps
        state = train_gan(tiny_config(**changes), tiny_data(), tmp_path / str(len(changes)), progress=False)
        last_step, last_grid = state.grids[-1]
        assert last_step == state.step and state.step % 3
        assert torch.equal(last_grid, to_uint8(generate(state, state.fixed_noise)).cpu())
        saved = load_checkpoint(tmp_path / str(len(changes)) / "checkpoint.pt")
        assert [s for s, _ in saved["grids"]] == [s for s, _ in state.grids]
    # a run that is already finished keeps its grids when resumed with nothing left to do
    again = train_gan(tiny_config(max_steps=10), tiny_data(), tmp_path / "1", resume=True, progress=False)
    assert [s for s, _ in again.grids] == [3, 6, 9, 10]


def test_training_moves_the_discriminator_apart():
    # after some steps on a fixed real set, D tells real from fake better than chance
    state = train_gan(tiny_config(max_steps=40, d_lr=1e-3), tiny_data(), progress=False)
    assert sum(state.history["d_real"][-5:]) / 5 > sum(state.history["d_fake"][-5:]) / 5


def test_non_finite_loss_names_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_g_loss = training.generator_loss
    calls = {"n": 0}

    def breaks_at_step_7(logits, kind):
        calls["n"] += 1
        loss = real_g_loss(logits, kind)
        return loss * float("nan") if calls["n"] >= 7 else loss

    monkeypatch.setattr(training, "generator_loss", breaks_at_step_7)
    with pytest.raises(NonFiniteLossError, match="non-finite loss at step 7"):
        train_gan(tiny_config(max_steps=20, checkpoint_every=4), tiny_data(), tmp_path, progress=False)
    saved = load_checkpoint(tmp_path / "checkpoint.pt")
    assert saved["step"] == 4
    assert all(torch.isfinite(v).all() for v in saved["G"].values() if v.is_floating_point())


def test_resume_refuses_another_architecture(tmp_path):
    train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, progress=False)
    with pytest.raises(ValueError, match="g_width \\(checkpoint 8, config 16\\)"):
        train_gan(tiny_config(max_steps=4, g_width=16), tiny_data(), tmp_path, resume=True, progress=False)


def test_data_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="config asks for 1x28x28"):
        train_gan(tiny_config(max_steps=1), tiny_data(size=32), progress=False)


def test_every_config_field_carries_its_help_text():
    assert all(len(f.metadata["help"]) > 10 for f in dataclasses.fields(TrainConfig))


def test_the_config_is_a_leaf_that_needs_no_torch():
    code = "import sys, dcgan_utils.engine.config as c; c.TrainConfig(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"


def test_a_field_added_later_at_its_default_keeps_every_run_key(monkeypatch):
    before = [TrainConfig().run_key(), TrainConfig(num_classes=10, epochs=10).run_key()]

    @dataclasses.dataclass
    class Later(TrainConfig):
        new_knob: float = 0.5  # a setting a later issue adds

    assert [Later().run_key(), Later(num_classes=10, epochs=10).run_key()] == before
    assert Later(new_knob=0.25).run_key() != before[0]


def _fake_clock(monkeypatch, seconds: float) -> None:
    """The trainer's clock, made to advance `seconds` at every reading: a time budget without waiting for it."""
    clock = {"t": 0.0}

    def tick():
        clock["t"] += seconds
        return clock["t"]

    monkeypatch.setattr(training.time, "perf_counter", tick)


def test_a_time_budget_counts_the_runs_own_training_time_across_sessions(tmp_path, monkeypatch):
    _fake_clock(monkeypatch, 1.0)  # every reading of the clock: one second later
    config = tiny_config(epochs=0, max_steps=1000, max_minutes=0.5)  # 30 s of training
    first = train_gan(config, tiny_data(), tmp_path, progress=False)
    assert first.finished and 30 <= first.train_seconds < 33 and 0 < first.step < 1000
    again = train_gan(config, tiny_data(), tmp_path, resume=True, progress=False)  # the budget is spent already
    assert again.step == first.step and load_checkpoint(tmp_path / "checkpoint.pt")["train_seconds"] >= 30


def test_a_default_run_stops_at_five_minutes_of_training_unless_its_epochs_end_first(tmp_path, monkeypatch):
    _fake_clock(monkeypatch, 5.0)  # every reading of the clock: five seconds later
    long = tiny_config(epochs=1000)  # TrainConfig's default budget: 1000 epochs of 8 steps would not fit in it
    cut = train_gan(long, tiny_data(), tmp_path / "long", progress=False)
    assert cut.finished and 300 <= cut.train_seconds < 320 and 0 < cut.step < 8000
    short = train_gan(tiny_config(epochs=2), tiny_data(), tmp_path / "short", progress=False)  # well within it
    assert short.step == 16 and short.train_seconds < 300
    unlimited = train_gan(tiny_config(epochs=50, max_minutes=0), tiny_data(), tmp_path / "all", progress=False)
    assert unlimited.step == 400 and unlimited.train_seconds > 300


def test_callback_runs_once_per_epoch_with_the_history_so_far():
    seen = []
    train_gan(tiny_config(epochs=3), tiny_data(), progress=False,
              callback=lambda state: seen.append((state.step, len(state.history["d_loss"]))))
    assert seen == [(8, 8), (16, 16), (24, 24)]


def test_a_conditional_run_trains_on_the_data_labels_and_resumes_bit_for_bit(tmp_path, monkeypatch):
    data = tiny_data()
    seen = []
    real_d_step = training.d_step
    monkeypatch.setattr(training, "d_step",
                        lambda s, real, labels=None: seen.append(labels) or real_d_step(s, real, labels))
    straight = train_gan(tiny_config(num_classes=10, max_steps=11), data, tmp_path / "a", progress=False)
    assert len(seen) == 11 and all(y is not None and y.dtype == torch.int64 for y in seen)
    assert torch.equal(straight.fixed_labels, torch.arange(8) % 10)
    train_gan(tiny_config(num_classes=10, max_steps=5), data, tmp_path / "b", progress=False)
    resumed = train_gan(tiny_config(num_classes=10, max_steps=11), data, tmp_path / "b", resume=True, progress=False)
    a, b = _everything(straight), _everything(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a) and resumed.history == straight.history


def test_generate_draws_the_requested_classes_and_cycles_them_by_default():
    state = train_gan(tiny_config(num_classes=10, max_steps=2), tiny_data(), progress=False)
    z = torch.randn(12, 16)
    cycled = generate(state, z)
    assert torch.equal(cycled, generate(state, z, torch.arange(12) % 10))
    assert not torch.equal(cycled, generate(state, z, torch.zeros(12, dtype=torch.long)))


def test_a_conditional_config_needs_data_with_that_many_classes():
    data = tiny_data()
    data.classes = ("a", "b")
    with pytest.raises(ValueError, match=r"num_classes=10, but the data have 2 classes .*set num_classes=2"):
        train_gan(tiny_config(num_classes=10, max_steps=1), data, progress=False)


def test_a_checkpoint_of_an_unconditional_run_is_refused_by_a_conditional_config(tmp_path):
    train_gan(tiny_config(max_steps=2), tiny_data(), tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"num_classes \(checkpoint 0, config 10\)"):
        train_gan(tiny_config(max_steps=4, num_classes=10), tiny_data(), tmp_path, resume=True, progress=False)


def test_k_discriminator_steps_per_generator_step_each_take_their_own_batch(monkeypatch):
    seen = []
    real_d_step = training.d_step
    monkeypatch.setattr(training, "d_step", lambda s, real, labels=None: seen.append(real.clone()) or real_d_step(s, real, labels))
    state = train_gan(tiny_config(d_steps=3, max_steps=2, epochs=0), tiny_data(), progress=False)
    assert state.step == 2 and len(seen) == 6 and all(len(b) == 32 for b in seen)
    assert len({tuple(b.flatten()[:50].tolist()) for b in seen}) == 6  # six different batches
    d_updates = next(iter(state.opt_d.state.values()))["step"].item()
    g_updates = next(iter(state.opt_g.state.values()))["step"].item()
    assert (d_updates, g_updates) == (6, 2)


def test_g_steps_update_g_that_many_times_per_step_each_on_fresh_noise(monkeypatch):
    seen = []
    real_g_step = training.g_step
    monkeypatch.setattr(training, "g_step", lambda s, fake, labels=None: seen.append(fake.detach().clone())
                        or real_g_step(s, fake, labels))
    state = train_gan(tiny_config(g_steps=3, max_steps=2, epochs=0), tiny_data(), progress=False)
    assert state.step == 2 and len(seen) == 6 and all(len(b) == 32 for b in seen)
    assert len({tuple(b.flatten()[:50].tolist()) for b in seen}) == 6  # six different fake batches
    d_updates = next(iter(state.opt_d.state.values()))["step"].item()
    g_updates = next(iter(state.opt_g.state.values()))["step"].item()
    assert (d_updates, g_updates) == (2, 6)
    assert len(state.history["g_loss"]) == 2  # one row of statistics per training step


def test_g_steps_is_a_positive_integer():
    with pytest.raises(ValueError, match=r"TrainConfig.g_steps must be a positive integer, got 0"):
        tiny_config(g_steps=0)


def test_the_ema_generator_is_the_moving_average_of_gs_weights_after_each_step():
    """EMA (decay 0.9): after the first step the average is G itself, then 0.9 * average + 0.1 * G after each."""
    from dcgan_utils.engine.data import to_model_range
    from dcgan_utils.engine.run_state import build_state
    from dcgan_utils.engine.training import train_step

    state = build_state(tiny_config(ema=0.9, precision="fp32"))
    images = to_model_range(tiny_data(96).images)
    expected = None
    for batch in images.split(32):
        train_step(state, batch)
        now = [p.detach().clone() for p in state.G.parameters()]
        expected = now if expected is None else [0.9 * e + 0.1 * p for e, p in zip(expected, now)]
    averaged = list(state.ema.module.parameters())
    assert len(averaged) == len(expected)
    for e, a, g in zip(expected, averaged, state.G.parameters()):
        torch.testing.assert_close(a, e, rtol=1e-5, atol=1e-6)
    assert any(not torch.equal(a, g) for a, g in zip(averaged, state.G.parameters())), "the average is just G"
