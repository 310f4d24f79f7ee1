"""The paper's AlexNet split into two towers, one per GPU, that exchange maps only where the paper's
GPUs did: before conv3 and before every fully connected layer.

``split_towers(model)`` cuts a grouped ``alexnet_paper()`` into two towers holding its halves of every
layer. ``run_on_devices`` runs them on two devices from one process (two GPUs when there are two);
``run_in_processes`` runs each tower in its own process, exchanging maps with
``torch.distributed.all_gather`` over the gloo backend, the way two machines or two GPUs would.
Both give the grouped model's output: the split *is* the grouped convolution.
"""

from __future__ import annotations

import os
import socket
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from .models import AlexNet, LocalResponseNorm

__all__ = ["split_towers", "run_on_devices", "run_in_processes"]


def _half(layer: nn.Module, rank: int) -> nn.Module:
    """This tower's half of a layer's kernels (or units), reading what the tower will be given."""
    if isinstance(layer, nn.Conv2d):
        out = layer.out_channels // 2
        in_channels = layer.in_channels // layer.groups  # grouped: own half; else: everything
        half = nn.Conv2d(in_channels, out, layer.kernel_size, layer.stride, layer.padding)
    elif isinstance(layer, nn.Linear):
        out = layer.out_features // 2
        half = nn.Linear(layer.in_features, out)
    elif isinstance(layer, LocalResponseNorm):  # a tower holds one group: normalise over all it has
        return LocalResponseNorm(layer.size, layer.alpha, layer.beta, layer.k)
    else:  # ReLU, pooling, dropout: nothing to split
        return layer
    rows = slice(rank * out, (rank + 1) * out)
    with torch.no_grad():
        half.weight.copy_(layer.weight[rows])
        half.bias.copy_(layer.bias[rows])
    return half


def split_towers(model: AlexNet) -> list[nn.ModuleList]:
    """Two towers, each a list of stages; after every stage the towers swap their outputs."""
    f, c = model.features, model.classifier
    stage_layers = [f[0:8], f[8:15], c[0:3], c[3:6], c[6:7]]   # ends: pool2 | pool5 | fc6 | fc7 | fc8
    towers = []
    for rank in range(2):
        stages = nn.ModuleList(nn.Sequential(*(_half(layer, rank) for layer in layers)) for layers in stage_layers)
        towers.append(stages.eval())
    return towers


def _exchange(parts: list[torch.Tensor], stage: int) -> torch.Tensor:
    joined = torch.cat(parts, dim=1)
    return torch.flatten(joined, 1) if stage == 1 else joined   # flatten after pool5


@torch.no_grad()
def run_on_devices(towers: list[nn.ModuleList], x: torch.Tensor, devices=("cpu", "cpu")) -> torch.Tensor:
    """Run tower r on devices[r], stage by stage, copying outputs across where the GPUs talked."""
    for tower, device in zip(towers, devices):
        tower.to(device)
    inputs = [x.to(d) for d in devices]
    for stage in range(len(towers[0])):
        outputs = [tower[stage](inp) for tower, inp in zip(towers, inputs)]
        inputs = [_exchange([o.to(d) for o in outputs], stage) for d in devices]
    return inputs[0].cpu()


def _worker(rank: int, towers_file: str, x: torch.Tensor, port: int, result_file: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    tower = torch.load(towers_file, weights_only=False)[rank]
    inp = x
    with torch.no_grad():
        for stage, layers in enumerate(tower):
            out = layers(inp).contiguous()
            gathered = [torch.empty_like(out) for _ in range(2)]
            dist.all_gather(gathered, out)       # the only communication between the two towers
            inp = _exchange(gathered, stage)
    if rank == 0:
        torch.save(inp, result_file)
    dist.destroy_process_group()


def run_in_processes(towers: list[nn.ModuleList], x: torch.Tensor) -> torch.Tensor:
    """Run each tower in its own process (CPU, gloo backend) and return the logits."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        towers_file, result_file = str(Path(tmp) / "towers.pt"), str(Path(tmp) / "logits.pt")
        torch.save([t.cpu() for t in towers], towers_file)
        mp.spawn(_worker, args=(towers_file, x, port, result_file), nprocs=2, join=True)
        return torch.load(result_file)
