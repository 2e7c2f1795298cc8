"""Several GPUs (or CPU processes) with PyTorch's DistributedDataParallel, started by torchrun.

    torchrun --standalone --nproc_per_node=4 -m dcgan_utils train --dataset cifar10 --out runs/c10 ...

Each of the N processes (ranks) holds a replica of G and D and trains on its own 1/N of every epoch's data (the
same shuffled order everywhere, rank r taking every N-th image) with batch_size / N images per step, so a step
sees batch_size images in all, as in a single-process run. DDP averages the gradients across ranks in backward,
so the replicas stay identical. Rank 0 alone writes checkpoints and grids; every rank reads one when resuming.

BatchNorm statistics are per rank: DDP's buffer broadcast before every forward breaks D's two forward passes (real
and fake) before one backward, so it is switched off; the running averages used for sampling are rank 0's.
Each rank draws its own noise. NCCL on CUDA (one GPU per rank, cuda:LOCAL_RANK), gloo on the CPU. Every decision
that ends the loop (steps, the time budget, a signal to one rank, a non-finite loss on one rank) is agreed by all
ranks, so none is left waiting in a collective.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from dcgan_utils.engine.config import TrainConfig
from dcgan_utils.engine.data import ImageData, load_dataset
from dcgan_utils.engine.device import get_device
from dcgan_utils.engine.run_state import GANState, compile_models
from dcgan_utils.engine.training import train_gan


# no buffer broadcast before each forward (newer PyTorch names it forward_sync_buffers; both still sync at start)
_NEW_NAME = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
LOCAL_BUFFERS = {"forward_sync_buffers": False} if _NEW_NAME else {"broadcast_buffers": False}


def launched() -> bool:
    """True in a process that torchrun started (one GPU and one process is a valid DDP run too)."""
    return all(k in os.environ for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))


def shard(data: ImageData, rank: int, world: int) -> ImageData:
    """Rank r's share: every world-th image from r on, cut to the same length on every rank (equal step counts)."""
    per_rank = len(data) // world
    index = torch.arange(rank, per_rank * world, world)
    return ImageData(data.images[index], data.labels[index], data.classes)


def device_for_rank(preference: str, local_rank: int) -> str:
    """The device of one rank: cuda:LOCAL_RANK when the preference allows CUDA and it is there, else the CPU.

    "auto", "cuda" and "cuda:N" all mean one GPU per rank under torchrun (N is ignored: torchrun hands out the
    GPUs); asking for CUDA where there is none is an error, as in a single process.
    """
    name = preference.strip().lower()
    if name == "cpu":
        return "cpu"
    if name.startswith("cuda"):
        return str(get_device(f"cuda:{local_rank}"))  # raises a clear error without CUDA or with too few GPUs
    if name == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    raise ValueError(f"device {preference!r} under torchrun: use 'auto', 'cuda' (one GPU per rank) or 'cpu'")


def agree_any(flag: bool, device: torch.device) -> bool:
    """True on every rank when flag is True on at least one (an all-reduce with MAX)."""
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def train_distributed(config: TrainConfig, out_dir: str | Path, resume: bool = False,
                      data: ImageData | None = None, overwrite: bool = False) -> GANState:
    """Run this process's rank of a torchrun job: join the group, train its shard under DDP, leave the group."""
    world, rank, local = (int(os.environ[k]) for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"))
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes: each takes "
                         f"batch_size / {world} images per step (for example --batch-size {world * 32})")
    if config.gradient_penalty or config.r1_penalty:
        raise ValueError("gradient penalties (gradient_penalty, r1_penalty) take a second derivative, which does not "
                         "pass through DistributedDataParallel: train them in one process, or use d_norm='spectral'")
    if config.lr_decay and config.max_minutes:
        raise ValueError("lr_decay over max_minutes follows each process's own clock, so the processes' learning rates "
                         "would differ: decay over steps (max_minutes=0 with epochs or max_steps), or train in one "
                         "process")
    device = torch.device(device_for_rank(config.device, local))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        if data is None:  # rank 0 first (it may download), then the others read what it wrote
            if rank != 0:
                dist.barrier()
            data = load_dataset(config.dataset, config.data_dir, image_size=config.image_size,
                                channels=config.channels)
            if rank == 0:
                dist.barrier()
        options = {"device_ids": [device.index] if device.type == "cuda" else None, **LOCAL_BUFFERS}

        def wrap(state: GANState) -> None:
            state.g_run = DistributedDataParallel(state.G, **options)
            state.d_run = DistributedDataParallel(state.D, **options)
            if config.compile:  # compile the wrapped modules, as PyTorch's DDP + compile notes do
                state.g_run, state.d_run = compile_models(state.g_run, state.d_run, device)
            state.noise.manual_seed(config.seed + 7919 * (rank + 1) + state.step)  # this rank's own noise

        # the checkpoint keeps the run's config (batch_size of all ranks); each rank steps batch_size / world
        return train_gan(replace(config, device=str(device)), shard(data, rank, world), out_dir, resume=resume,
                         progress=rank == 0, prepare=wrap, write=rank == 0, overwrite=overwrite,
                         batch_size=config.batch_size // world, agree=lambda flag: agree_any(flag, device))
    finally:
        dist.destroy_process_group()
