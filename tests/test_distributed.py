"""DistributedDataParallel on the CPU: two real processes started by torchrun, gloo backend."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dcgan_utils.checkpoint import load_checkpoint
from dcgan_utils.distributed import shard
from helpers import image_folder, tiny_data

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
TINY = ["--dataset", "folder", "--image-size", 32, "--g-width", 4, "--d-width", 4, "--epochs", 1, "--device", "cpu",
        "--sample-every", 2]


def torchrun(*args, cwd):
    return subprocess.run([*TORCHRUN, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_each_rank_gets_an_equal_disjoint_share():
    data = tiny_data(n=103)
    parts = [shard(data, r, 3) for r in range(3)]
    assert [len(p) for p in parts] == [34, 34, 34]
    seen = torch.cat([p.images.flatten(1) for p in parts])
    assert len(torch.unique(seen, dim=0)) == 102  # no image twice
    assert torch.equal(parts[1].labels, data.labels[1:102:3])


def test_replicas_stay_identical_while_each_rank_sees_its_own_data(tmp_path):
    script = tmp_path / "replica.py"
    script.write_text(
        "import os, torch\n"
        "from dcgan_utils.config import TrainConfig\nfrom dcgan_utils.data import ImageData\n"
        "from dcgan_utils.distributed import train_distributed\n"
        "g = torch.Generator().manual_seed(0)\n"
        "data = ImageData(torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=g),\n"
        "                 torch.randint(0, 10, (64,), generator=g), tuple('0123456789'))\n"
        "config = TrainConfig(g_width=4, d_width=4, latent_dim=8, batch_size=8, epochs=1, device='cpu', seed=1)\n"
        "from dcgan_utils.training import build_state\n"
        "init = build_state(config)  # the same seeded start the ranks build\n"
        "state = train_distributed(config, 'run', data=data)\n"
        "torch.save({'params': {k: v for k, v in [*state.G.named_parameters(), *state.D.named_parameters()]},\n"
        "            'init': {k: v for k, v in [*init.G.named_parameters(), *init.D.named_parameters()]},\n"
        "            'buffers': dict(state.D.named_buffers()), 'step': state.step}, f\"rank{os.environ['RANK']}.pt\")\n")
    run = subprocess.run([*TORCHRUN, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert r0["step"] == r1["step"] == 8  # 64 images, 32 per rank, 4 per rank and step
    for name, value in r0["params"].items():
        assert torch.equal(value, r1["params"][name]), f"{name} differs between the replicas"
    moved = [k for k, v in r0["init"].items() if not torch.equal(v, r0["params"][k])]
    assert len(moved) == len(r0["params"]), "training left some parameters where they started"
    bn = [k for k in r0["buffers"] if k.endswith("running_mean")]
    assert bn and any(not torch.equal(r0["buffers"][k], r1["buffers"][k]) for k in bn), "ranks saw the same data"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]  # rank 0 alone writes


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    image_folder(root / "images", repeat=16)  # 32 RGB images in two classes
    return root


def test_the_cli_trains_and_resumes_under_torchrun(images):
    out = images / "run"
    first = torchrun("-m", "dcgan_utils", "train", *TINY, "--data-dir", images / "images", "--batch-size", 8,
                     "--max-steps", 2, "--out", out, cwd=images)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("2 steps; wrote") == 1, "rank 0 alone reports and writes"
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == 2 and ck["config"]["batch_size"] == 4  # 8 per step in all, 4 on each rank
    resumed = torchrun("-m", "dcgan_utils", "train", *TINY, "--data-dir", images / "images", "--batch-size", 8,
                       "--max-steps", 4, "--resume", "--out", out, cwd=images)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ck = load_checkpoint(out / "checkpoint.pt")
    assert ck["step"] == 4 and len(ck["history"]["d_loss"]) == 4 and (out / "samples.png").is_file()
    assert not list(Path(out).glob(".checkpoint.pt.tmp-*"))


def test_a_batch_that_does_not_split_across_the_ranks_is_a_clear_error(images):
    run = torchrun("-m", "dcgan_utils", "train", *TINY, "--data-dir", images / "images", "--batch-size", 7,
                   "--max-steps", 1, "--out", images / "odd", cwd=images)
    assert run.returncode != 0 and "batch_size 7 must be divisible by the 2 processes" in run.stderr
