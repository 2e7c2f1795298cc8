"""Several GPUs (or CPU processes) with PyTorch's DistributedDataParallel, started by torchrun.

    torchrun --standalone --nproc_per_node=4 -m dcgan_utils train --dataset cifar10 --out runs/c10 ...

Each of the N processes (ranks) holds a replica of G and D and trains on its own 1/N of every epoch's data (the
same shuffled order everywhere, rank r taking every N-th image) with batch_size / N images per step, so a step
sees batch_size images in all, as in a single-process run. DDP averages the gradients across ranks in backward,
so the replicas stay identical. Rank 0 alone writes checkpoints and grids; every rank reads one when resuming.

BatchNorm statistics are per rank: DDP's buffer broadcast before every forward breaks D's two forward passes (real
and fake) before one backward, so it is switched off; the running averages used for sampling are rank 0's.
Each rank draws its own noise. NCCL on CUDA (one GPU per rank, cuda:LOCAL_RANK), gloo on the CPU.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from dcgan_utils.config import TrainConfig
from dcgan_utils.data import ImageData, load_dataset
from dcgan_utils.state import GANState
from dcgan_utils.training import train_gan


# no buffer broadcast before each forward (newer PyTorch names it forward_sync_buffers; both still sync at start)
_NEW_NAME = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
LOCAL_BUFFERS = {"forward_sync_buffers": False} if _NEW_NAME else {"broadcast_buffers": False}


def launched() -> bool:
    """True inside a torchrun process group of more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def shard(data: ImageData, rank: int, world: int) -> ImageData:
    """Rank r's share: every world-th image from r on, cut to the same length on every rank (equal step counts)."""
    per_rank = len(data) // world
    index = torch.arange(rank, per_rank * world, world)
    return ImageData(data.images[index], data.labels[index], data.classes)


def train_distributed(config: TrainConfig, out_dir: str | Path, resume: bool = False,
                      data: ImageData | None = None) -> GANState:
    """Run this process's rank of a torchrun job: join the group, train its shard under DDP, leave the group."""
    world, rank, local = (int(os.environ[k]) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes: each takes "
                         f"batch_size / {world} images per step (for example --batch-size {world * 32})")
    cuda = torch.cuda.is_available() and config.device in ("auto", "cuda")
    device = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        per_rank = replace(config, batch_size=config.batch_size // world, device=device)
        if data is None:
            data = load_dataset(config.dataset, config.data_dir, image_size=config.image_size,
                                channels=config.channels)
        options = {"device_ids": [local] if cuda else None, **LOCAL_BUFFERS}

        def wrap(state: GANState) -> None:
            state.g_run = DistributedDataParallel(state.G, **options)
            state.d_run = DistributedDataParallel(state.D, **options)
            state.noise.manual_seed(config.seed + 7919 * (rank + 1) + state.step)  # this rank's own noise

        return train_gan(per_rank, shard(data, rank, world), out_dir, resume=resume, progress=rank == 0,
                         prepare=wrap, write=rank == 0)
    finally:
        dist.destroy_process_group()
