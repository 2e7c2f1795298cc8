"""CUDA paths, run where a CUDA GPU is (the GPU check, `make gpu-check`); skipped on machines without one.

Each test is a path a learner with a GPU takes and that no CPU can exercise: mixed precision with its scalers,
layouts and compile on CUDA, checkpoints crossing between the CPU and the GPU, and one-GPU DDP with NCCL.
"""

import dataclasses
import subprocess
import sys

import pytest
import torch

from dcgan_utils.engine.checkpoint import load_checkpoint
from dcgan_utils.engine.run_state import build_state, generate
from dcgan_utils.engine.runs import PRETRAINED, find_pretrained, load_or_train, read_registry
from dcgan_utils.engine.throughput import images_per_second
from dcgan_utils.engine.training import train_gan
from helpers import tiny_config, tiny_data

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run make gpu-check there)")]


def cuda_config(**changes):
    return tiny_config(device="cuda", **changes)


@pytest.mark.parametrize("precision", ["fp16", "bf16", "fp32"])
def test_training_on_cuda_in_each_precision_gives_finite_losses(precision):
    if precision == "bf16" and torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("bf16 is emulated before compute capability 8.0")
    state = train_gan(cuda_config(precision=precision, max_steps=12, epochs=0), tiny_data(), progress=False)
    assert state.precision == precision and next(state.G.parameters()).device.type == "cuda"
    assert all(torch.isfinite(torch.tensor(state.history[k])).all() for k in ("d_loss", "g_loss"))
    if precision == "fp16":  # two scalers, each enabled and with a finite scale
        assert state.scaler_g.is_enabled() and state.scaler_d.is_enabled()
        assert torch.isfinite(torch.tensor(state.scaler_g.get_scale())) and state.scaler_d.get_scale() > 0


def test_auto_precision_on_this_gpu_is_the_native_one():
    state = build_state(cuda_config(precision="auto"))
    assert state.precision == ("bf16" if torch.cuda.get_device_capability() >= (8, 0) else "fp16")


@pytest.mark.parametrize("changes", [{"channels_last": True}, {"compile": True},
                                     {"channels_last": True, "compile": True}], ids=["channels_last", "compile", "both"])
def test_layout_and_compile_change_the_speed_not_the_result(changes):
    base = cuda_config(precision="fp32", channels_last=False, max_steps=4, epochs=0, ema=0.0, latent_dim=100)
    before = torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32 = True, False  # fp32 convolutions in fp32:
    try:  # with TF32 (cuDNN's default) the two layouts' algorithms rounded differently: G 7.1e-4 apart (H200)
        a = train_gan(base, tiny_data(), progress=False)
        b = train_gan(dataclasses.replace(base, **changes), tiny_data(), progress=False)
    finally:
        torch.backends.cudnn.deterministic, torch.backends.cudnn.allow_tf32 = before
    for x, y in zip(a.G.state_dict().values(), b.G.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-3, atol=1e-4)


def test_compile_with_channels_last_trains_in_bf16():
    """A smoke test of notebook 05's 'all of them (bf16)' row: compile, channels_last and bf16 together, with 100
    noise channels so that inductor's layout heuristics would act (they skip models whose convolutions all have at
    most 64 channels in and out). It catches a crash, not a wrong result."""
    state = train_gan(cuda_config(precision="bf16", compile=True, max_steps=3, epochs=0, latent_dim=100), tiny_data(),
                      progress=False)
    assert state.step == 3 and torch.isfinite(torch.tensor(state.history["g_loss"])).all()


def test_resume_on_cuda_continues_the_run(tmp_path):
    data = tiny_data()
    straight = train_gan(cuda_config(max_steps=11, precision="fp32"), data, tmp_path / "a", progress=False)
    train_gan(cuda_config(max_steps=5, precision="fp32"), data, tmp_path / "b", progress=False)
    resumed = train_gan(cuda_config(max_steps=11, precision="fp32"), data, tmp_path / "b", resume=True, progress=False)
    assert resumed.step == 11 and [s for s, _ in resumed.grids] == [s for s, _ in straight.grids]
    torch.testing.assert_close(torch.tensor(resumed.history["d_loss"]), torch.tensor(straight.history["d_loss"]),
                               rtol=1e-3, atol=1e-4)  # the same run; cuDNN may differ in the last bits


def test_a_cpu_checkpoint_resumes_on_cuda_and_a_cuda_one_samples_on_the_cpu(tmp_path):
    data = tiny_data()
    train_gan(tiny_config(max_steps=5, precision="fp32"), data, tmp_path / "cpu", progress=False)
    on_gpu = train_gan(cuda_config(max_steps=9, precision="fp32"), data, tmp_path / "cpu", resume=True,
                       progress=False)  # was: Generator.set_state refused the CPU generator's state
    assert on_gpu.step == 9 and on_gpu.noise.device.type == "cpu"
    run = [sys.executable, "-m", "dcgan_utils", "sample", tmp_path / "cpu" / "checkpoint.pt", "--num", 8]
    for device in ("cpu", "cuda"):
        out = tmp_path / f"{device}.npy"
        done = subprocess.run([*map(str, run), "--device", device, "--out", str(out)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
    assert load_checkpoint(tmp_path / "cpu" / "checkpoint.pt")["fixed_noise"].device.type == "cpu"


def test_the_shipped_release_loads_on_cuda_and_draws_its_grids(tmp_path):
    key = next(k for k, e in sorted(read_registry().items()) if e["kind"] == "release")  # not a long start
    from dcgan_utils.engine.config import TrainConfig
    config = dataclasses.replace(TrainConfig.from_dict(read_registry()[key]["config"]), device="cuda")
    state, how = load_or_train(config, None, tmp_path, pretrained=PRETRAINED)  # was: a crash on map_location
    assert how == "pretrained" and find_pretrained(config) is not None
    assert all(g.device.type == "cpu" for _, g in state.grids)  # the live view calls .numpy() on them
    assert generate(state, state.fixed_noise).device.type == "cuda"


def test_the_speed_table_times_with_cuda_events_and_reports_peak_memory():
    row = images_per_second(cuda_config(precision="fp32"), tiny_data(), steps=3, warmup=1)
    assert row["images_per_s"] > 0 and row["peak_gib"] > 0


def test_one_gpu_ddp_with_nccl_trains_and_writes(tmp_path):
    from helpers import image_folder
    image_folder(tmp_path / "images", repeat=16)
    args = ["--dataset", "folder", "--data-dir", tmp_path / "images", "--image-size", 32, "--g-width", 4,
            "--d-width", 4, "--batch-size", 8, "--max-steps", 3, "--device", "cuda", "--out", tmp_path / "run"]
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
                           "-m", "dcgan_utils", "train", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3
