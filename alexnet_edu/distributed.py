"""``alexnet-edu train`` on several GPUs, or several CPU processes, under ``torchrun``.

    torchrun --nproc-per-node 4 -m alexnet_edu.cli train --profile full --out runs/ddp

torchrun starts the command once per device and tells each copy, a *process*, who it is (the
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` variables). Every process holds the whole network and
trains on its own share of every batch; ``DistributedDataParallel`` averages the processes'
gradients after the backward pass, so every copy takes the step that one process would take with
the whole batch. The batch keeps the profile's size (128 = 4 processes x 32 images), so the recipe
and its learning rate mean what they mean on one device. NCCL and one GPU per process where there
are GPUs, gloo and the CPU otherwise; across machines, torchrun's ``--nnodes`` and ``--rdzv-*``
options. Without torchrun none of this runs: ``fit`` takes its one-process path.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

__all__ = ["LaunchError", "add_up", "check_batch", "check_resumed_alike", "finish", "local_rank_0_first",
           "rank_and_world", "start", "under_torchrun", "wrap"]


class LaunchError(RuntimeError):
    """torchrun started the training in a way it cannot run; the message says what to change."""


def under_torchrun() -> bool:
    """True in a process that torchrun started (it sets RANK and WORLD_SIZE)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def start() -> torch.device:
    """Join the processes torchrun started, and return this process's device: the GPU numbered
    LOCAL_RANK on this machine (NCCL), or the CPU (gloo) where the GPUs are hidden on purpose with
    ``CUDA_VISIBLE_DEVICES=``; a machine without a GPU where nobody said so gets a LaunchError."""
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        gpus, here = torch.cuda.device_count(), int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1))
        if here > gpus:   # every process on the machine says so, not only those left without a GPU
            raise LaunchError(
                f"torchrun started {here} processes on this machine, which has {gpus} GPU(s): one "
                f"process per GPU, so pass --nproc-per-node {gpus} (or hide the GPUs with "
                f"CUDA_VISIBLE_DEVICES= to train in CPU processes)")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    elif "CUDA_VISIBLE_DEVICES" not in os.environ:   # no GPU, and nobody asked for CPU processes
        raise LaunchError(
            "torchrun started this training on a machine where PyTorch sees no GPU, so every process "
            "would train on the CPU, sharing its cores: run `alexnet-edu train` without torchrun, or, "
            "to train in CPU processes on purpose (gloo), set CUDA_VISIBLE_DEVICES= (empty) for torchrun")
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def rank_and_world() -> tuple[int, int]:
    """This process's number and the number of processes: (0, 1) without torchrun."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def check_batch(batch_size: int, world: int) -> None:
    """The batch is split evenly between the processes, or a LaunchError says what to do."""
    if batch_size % world:
        fits = [n for n in range(2, batch_size + 1) if batch_size % n == 0]
        raise LaunchError(
            f"the batch of {batch_size} images does not split evenly between {world} processes: "
            f"run a number of processes (--nproc-per-node times --nnodes) that divides it: "
            f"{', '.join(map(str, fits))}")


def check_resumed_alike(epochs_done: int) -> None:
    """All the processes resumed after the same epoch, or a LaunchError says why not."""
    done = [None] * dist.get_world_size()
    dist.all_gather_object(done, epochs_done)
    if len(set(done)) > 1:
        raise LaunchError(f"--resume: the processes found checkpoints after {done} epochs: every "
                          f"machine must see the same --out folder (a shared file system)")


def wrap(model: torch.nn.Module, device: torch.device) -> DistributedDataParallel:
    """``model`` in DDP, which averages its gradients over the processes in every backward pass."""
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def add_up(*tensors: torch.Tensor) -> None:
    """Replace each tensor, in every process, by its sum over all the processes."""
    for tensor in tensors:
        dist.all_reduce(tensor)


@contextmanager
def local_rank_0_first():
    """On each machine, process 0 runs the block first (finding Fashion-MNIST, decompressing or
    downloading it into the cache), then the others, which find it there."""
    first = int(os.environ.get("LOCAL_RANK", 0)) == 0
    if dist.is_initialized() and not first:
        dist.barrier()
    yield
    if dist.is_initialized() and first:
        dist.barrier()


def finish() -> None:
    """Leave the process group (every process, at the end of the run); nothing without torchrun."""
    if dist.is_initialized():
        dist.destroy_process_group()
