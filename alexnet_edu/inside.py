"""Looking inside a trained AlexNet: its feature maps, its last hidden layer, nearest neighbours there."""

from __future__ import annotations

import torch
from torch import nn

from .data import to_model_input

__all__ = ["conv_layer_names", "feature_maps", "hidden_features", "kernel_spectrum", "nearest_neighbours"]


def conv_layer_names(model: nn.Module) -> dict[str, int]:
    """``{"conv1": i, ...}``: the index in ``model.features`` of the activation after each convolution."""
    names, count = {}, 0
    for i, layer in enumerate(model.features):
        if isinstance(layer, nn.Conv2d):
            count += 1
            names[f"conv{count}"] = i + 1   # the ReLU (or other activation) right after it
    return names


@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The activated output of every convolution for the batch ``x``: ``{"conv1": (N, 96, H, W), ...}``."""
    wanted = {index: name for name, index in conv_layer_names(model).items()}
    maps = {}
    model.eval()
    for i, layer in enumerate(model.features):
        x = layer(x)
        if i in wanted:
            maps[wanted[i]] = x
    return maps


@torch.no_grad()
def hidden_features(model: nn.Module, images: torch.Tensor, resolution: int, batch_size: int = 256,
                    layer: str = "fc7") -> torch.Tensor:
    """A hidden fully connected layer after its ReLU (4,096 numbers per image) for uint8 ``images``:
    ``"fc7"``, the last one, or ``"fc6"``, the one before it."""
    model.eval()
    device = next(model.parameters()).device
    # the classifier is fc6, ReLU, Dropout, fc7, ReLU, Dropout, fc8
    upto = {"fc6": model.classifier[:3], "fc7": model.classifier[:-1]}[layer]
    return torch.cat([upto(torch.flatten(model.features(to_model_input(chunk.to(device), resolution)), 1))
                      for chunk in images.split(batch_size)])


def nearest_neighbours(queries: torch.Tensor, pool: torch.Tensor, k: int = 6) -> torch.Tensor:
    """Indices (len(queries), k) of the ``k`` rows of ``pool`` closest to each query (Euclidean)."""
    return torch.cdist(queries, pool).topk(k, largest=False).indices


def kernel_spectrum(kernel: torch.Tensor, size: int = 33) -> torch.Tensor:
    """How strongly a 2-D kernel passes each spatial frequency: ``|FFT|`` of the kernel zero-padded to
    ``size`` x ``size``, zero frequency in the centre. A smooth blob keeps its energy in the centre;
    an edge or stripe detector puts two bright spots, mirror images, on the line across the stripes."""
    return torch.fft.fftshift(torch.fft.fft2(kernel.float(), s=(size, size)).abs())
