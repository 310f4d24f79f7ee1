"""Data-parallel training of AlexNet, the way several GPUs are used today.

Every process holds a whole copy of the network and trains on its own slice of each batch; after
the backward pass, ``DistributedDataParallel`` averages the gradients of all processes (an
all-reduce), so every copy takes the same step. Launch one process per device with ``torchrun``::

    torchrun --nproc-per-node 2 -m alexnet_edu.data_parallel --steps 3 --save two.pt
    torchrun --nproc-per-node 1 -m alexnet_edu.data_parallel --steps 3 --save one.pt

``--batch-size`` is the *global* batch (two processes and 128: 64 images each a step). With dropout
off (``--dropout 0``) the two commands take the same steps up to rounding: the gradient of the mean
loss over 128 images is the average of those over its two halves. NCCL and one GPU per process where
there are GPUs, gloo and the CPU otherwise; several machines: torchrun's ``--nnodes`` and ``--rdzv-*``.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook
from torch.utils.data import DistributedSampler

from . import distributed
from .data import load_fashion_mnist, to_model_input
from .models import alexnet
from .profiles import PROFILES, get_profile
from .train import PAPER_MOMENTUM, PAPER_WEIGHT_DECAY, evaluate, sgd

__all__ = ["main", "parse_args", "launch"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="torchrun --nproc-per-node N -m alexnet_edu.data_parallel",
                                description="Train AlexNet on Fashion-MNIST, one process per device.")
    p.add_argument("--profile", choices=tuple(PROFILES), help="sizes and recipe; default as for alexnet-edu train")
    p.add_argument("--epochs", type=int)
    p.add_argument("--steps", type=int, help="stop after this many steps (batches)")
    p.add_argument("--batch-size", type=int, help="global batch, split evenly between the processes")
    p.add_argument("--lr", type=float)
    p.add_argument("--resolution", type=int)
    p.add_argument("--train-size", type=int)
    p.add_argument("--test-size", type=int)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10, help="print the loss every this many steps")
    p.add_argument("--save", help="file for the trained parameters (written by process 0)")
    return p.parse_args(argv)


def count_floats(state: dict, bucket: dist.GradBucket) -> torch.futures.Future[torch.Tensor]:
    """DDP's usual all-reduce (sum, then divide by the number of processes), counting what it sends."""
    state["floats"] += bucket.buffer().numel()
    return allreduce_hook(None, bucket)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    profile = get_profile(args.profile)
    epochs = args.epochs or profile.epochs
    batch_size = args.batch_size or profile.batch_size
    lr = args.lr or profile.lr
    resolution = args.resolution or profile.resolution
    train_size = args.train_size or profile.train_size
    test_size = args.test_size or profile.test_size

    # torchrun starts this script once per device and tells each copy who it is (RANK, WORLD_SIZE).
    device = distributed.start()              # this process's GPU (NCCL), or the CPU (gloo)
    rank, world = distributed.rank_and_world()
    distributed.check_batch(batch_size, world)
    local_batch = batch_size // world
    say = print if rank == 0 else (lambda *a, **k: None)

    with distributed.local_rank_0_first():    # finds (or downloads) the data, then the others read it
        data = load_fashion_mnist(device=device).subset(train_size, test_size)

    torch.manual_seed(args.seed)         # the same initial weights in every process (DDP also copies
    model = alexnet(image_size=resolution, dropout=args.dropout).to(device)   # process 0's to the others)
    torch.manual_seed(args.seed + rank)  # but each process its own dropout masks
    model = distributed.wrap(model, device)
    sent = {"floats": 0}
    model.register_comm_hook(sent, count_floats)
    optimizer = sgd(model, lr=lr, momentum=PAPER_MOMENTUM, weight_decay=PAPER_WEIGHT_DECAY,
                    fused=device.type == "cuda")

    # Every process shuffles with the same seed and takes every world-th image of the shuffled
    # order, so its batch i is one slice of the batch i that a single process would see.
    sampler = DistributedSampler(range(len(data.train_labels)), num_replicas=world, rank=rank,
                                 shuffle=True, seed=args.seed, drop_last=True)
    say(f"{world} process(es), {dist.get_backend()}, {device.type}; batch {batch_size} = {world} x {local_batch}; "
        f"{len(data.train_labels):,} training images at {resolution} px")
    step, start = 0, time.perf_counter()
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        order = torch.tensor(list(sampler), device=device)
        for first in range(0, len(order) - local_batch + 1, local_batch):
            if args.steps is not None and step == args.steps:
                break
            idx = order[first:first + local_batch]
            x, y = to_model_input(data.train_images[idx], resolution), data.train_labels[idx]
            loss = F.cross_entropy(model(x), y)       # mean over this process's images
            optimizer.zero_grad(set_to_none=True)
            loss.backward()                           # DDP averages the gradients across processes here
            optimizer.step()
            step += 1
            if step == 1:
                say(f"gradients all-reduced per step: {sent['floats']:,} floats "
                    f"({sent['floats'] * 4 / 1e6:.1f} MB in fp32)")
            if step % args.log_every == 0:
                mean_loss = loss.detach().clone()
                dist.all_reduce(mean_loss)            # every process must join in
                say(f"epoch {epoch + 1} step {step}: loss {mean_loss.item() / world:.4f}")

    say(f"{step} steps in {time.perf_counter() - start:.1f} s")
    if rank == 0:
        accuracy = evaluate(model.module, data.test_images, data.test_labels, resolution=resolution)
        say(f"test accuracy {accuracy:.3f} on {len(data.test_labels):,} images")
        if args.save:
            Path(args.save).parent.mkdir(parents=True, exist_ok=True)
            torch.save({k: v.cpu() for k, v in model.module.state_dict().items()}, args.save)
            say(f"weights saved in {args.save}")
    distributed.finish()
    return 0


def launch(processes: int, args: list[str], *, cpu: bool = True) -> str:
    """Run ``torchrun --standalone --nproc-per-node processes -m alexnet_edu.data_parallel *args``
    (on the CPU unless ``cpu=False``) and return what process 0 printed; raise if it fails."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
               str(processes), "-m", "alexnet_edu.data_parallel", *args]
    env = dict(os.environ, **({"CUDA_VISIBLE_DEVICES": ""} if cpu else {}))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command[2:])} failed:\n{done.stderr[-3000:]}")
    return done.stdout


if __name__ == "__main__":
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29500")):
        os.environ.setdefault(name, value)    # what torchrun would set: lets `python -m` run it as one process
    try:
        raise SystemExit(main())
    except distributed.LaunchError as error:  # a batch that does not split, more processes than GPUs
        distributed.finish()
        raise SystemExit(f"error: {error}")
