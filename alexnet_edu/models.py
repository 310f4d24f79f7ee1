"""The networks of the book: AlexNet as d2l.ai teaches it, AlexNet as the 2012 paper built it, LeNet-5.

Each builder returns an ordinary ``nn.Module`` with a ``features`` part (convolutions) and a
``classifier`` part (fully connected layers), like torchvision's ``alexnet.py``. The keyword
switches (activation, dropout, LRN, pooling, width) exist for the ablation chapters; their defaults
give the network the chapter names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .space_to_depth import SpaceToDepthConv2d

__all__ = [
    "AlexNet",
    "LocalResponseNorm",
    "alexnet",
    "alexnet_paper",
    "lenet",
    "conv_output_size",
    "paper_init",
    "xavier_init",
    "ACTIVATIONS",
]

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Side of a convolution's or pooling's output: floor((size + 2*padding - kernel) / stride) + 1."""
    return (size + 2 * padding - kernel) // stride + 1


class LocalResponseNorm(nn.Module):
    """Local response normalisation exactly as written in Krizhevsky et al. (2012), section 3.3.

        b[i] = a[i] / (k + alpha * sum_{j = max(0, i - n//2)}^{min(N - 1, i + n//2)} a[j]**2) ** beta

    where i runs over the N channels at one pixel. ``torch.nn.LocalResponseNorm`` divides alpha by
    n inside the bracket, so ``torch.nn.LocalResponseNorm(n, alpha=n * alpha, beta, k)`` computes
    the same thing (``tests/test_models.py`` checks it).

    ``groups=2`` normalises each half of the channels on its own: our reading of the paper's Figure 2,
    which draws each GPU's half of the layer apart (section 3.3 only calls N "the total number of
    kernels in the layer").
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, groups: int = 1):
        super().__init__()
        self.size, self.alpha, self.beta, self.k, self.groups = size, alpha, beta, k, groups

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if self.groups > 1:
            return torch.cat([self._normalise(part) for part in a.chunk(self.groups, dim=1)], dim=1)
        return self._normalise(a)

    def _normalise(self, a: torch.Tensor) -> torch.Tensor:
        squares = a.pow(2)
        # Pad the channel axis with zeros so that every channel has a full window of n neighbours;
        # the zeros make the window stop at the first and last channel as the formula's max/min do.
        padded = F.pad(squares, (0, 0, 0, 0, self.size // 2, (self.size - 1) // 2))
        channels = a.shape[1]
        window_sum = sum(padded[:, j : j + channels] for j in range(self.size))
        return a / (self.k + self.alpha * window_sum).pow(self.beta)

    def extra_repr(self) -> str:
        groups = f", groups={self.groups}" if self.groups > 1 else ""
        return f"size={self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}{groups}"


class AlexNet(nn.Module):
    """A convolutional ``features`` stack, then a fully connected ``classifier``.

    The forward pass checks its input first, so a wrong channel count or a too-small image fails
    with a sentence that says what to pass instead of a shape error deep inside a Linear layer.
    """

    def __init__(self, features: nn.Sequential, classifier: nn.Sequential, in_channels: int, min_size: int,
                 image_size: int):
        super().__init__()
        self.features = features
        self.classifier = classifier
        self.in_channels = in_channels
        self.min_size = min_size
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input(x, self.in_channels, self.min_size)
        size = tuple(x.shape[-2:])
        x = self.features(x)
        x = torch.flatten(x, 1)
        if x.shape[1] != self.classifier[0].in_features:
            raise ValueError(
                f"this model was built for {self.image_size}x{self.image_size} px images (its first Linear "
                f"layer takes {self.classifier[0].in_features} features), but {size[0]}x{size[1]} px images give "
                f"{x.shape[1]}: resize the images to {self.image_size} px or build it with image_size={size[0]}"
            )
        return self.classifier(x)


def check_input(x: torch.Tensor, in_channels: int, min_size: int) -> None:
    if x.dim() != 4:
        raise ValueError(f"expected a batch of images shaped (N, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"this model takes normalised float images, got {x.dtype}: convert uint8 images "
                         f"with alexnet_edu.data.to_model_input(images, resolution), which also resizes them")
    if x.shape[1] != in_channels:
        hint = {1: " (Fashion-MNIST is grey: build the model with in_channels=1)",
                3: " (for colour images, build the model with in_channels=3)"}.get(x.shape[1], "")
        raise ValueError(f"this model expects {in_channels}-channel images, got {x.shape[1]} channels{hint}")
    if min(x.shape[-2:]) < min_size:
        raise ValueError(
            f"images of {x.shape[-2]}x{x.shape[-1]} px are too small for this model: the smallest "
            f"input its convolution stack accepts is {min_size}x{min_size} px; resize the images up"
        )


def _pool(overlap: bool) -> nn.MaxPool2d:
    # The paper's overlapping pooling (window z=3, stride s=2) or the usual non-overlapping z=s=2.
    return nn.MaxPool2d(kernel_size=3, stride=2) if overlap else nn.MaxPool2d(kernel_size=2, stride=2)


def _spatial_size(features: nn.Sequential, size: int) -> int:
    """Follow an image side through every convolution and pooling of ``features``."""
    for layer in features:
        if isinstance(layer, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            k, s, p = (layer.kernel_size, layer.stride, layer.padding)
            k, s, p = (v[0] if isinstance(v, tuple) else v for v in (k, s, p))
            size = conv_output_size(size, k, s, p)
    return size


def _smallest_input(features: nn.Sequential) -> int:
    size = 1
    while _spatial_size(features, size) < 1:
        size += 1
    return size


def _classifier(in_features: int, hidden: int, num_classes: int, act: type[nn.Module], dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_features, hidden), act(), nn.Dropout(dropout),
        nn.Linear(hidden, hidden), act(), nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


def _middle_layers(in_channels: int, channels: int, count: int, act: type[nn.Module]) -> list[nn.Module]:
    """``count`` 3x3 convolutions of ``channels`` maps, padding 1, each followed by ``act``: conv3, conv4."""
    layers = []
    for _ in range(count):
        layers += [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1), act()]
        in_channels = channels
    return layers


def xavier_init(model: nn.Module) -> nn.Module:
    """d2l.ai's initialisation (``train_ch6``): Xavier-uniform weights in every Conv2d and Linear.

    Xavier scales each layer's random weights to its fan-in and fan-out, so signals neither vanish
    nor explode on the way through; PyTorch's default would leave AlexNet on a plateau for its
    first hundred or so steps, and sigmoid LeNet for much longer.
    """
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
    return model


def paper_init(model: "AlexNet") -> "AlexNet":
    """The paper's initialisation (section 5): weights ~ N(0, 0.01²) (standard deviation 0.01); biases 1
    in conv2, conv4, conv5 and the hidden fully connected layers (to give ReLUs positive inputs early
    on), 0 elsewhere."""
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    for m in convs + linears:
        nn.init.normal_(m.weight, std=0.01)
        nn.init.zeros_(m.bias)
    for m in [convs[1], convs[3], convs[4]] + linears[:-1]:
        nn.init.ones_(m.bias)
    return model


def alexnet(
    num_classes: int = 10,
    in_channels: int = 1,
    image_size: int = 224,
    *,
    activation: str = "relu",
    dropout: float = 0.5,
    lrn: bool = False,
    overlap_pooling: bool = True,
    width: float = 1.0,
    middle: int = 2,
) -> AlexNet:
    """AlexNet as d2l.ai teaches it: one tower, grey 224x224 input, 10 classes, 46,764,746 parameters,
    Xavier-initialised as d2l's training function does.

    ``image_size`` sets the input side the first Linear layer is sized for (224 px gives a 5x5x256
    map, so 6,400 inputs; 96 px gives 1x1x256, so 256). ``width`` scales every layer's channel and
    unit count; ``lrn`` adds the paper's LRN after the first two ReLUs. ``middle`` is the number of
    3x3, 384-channel convolutions between conv2 and conv5 (conv3 and conv4: 2); with 0, conv5 reads
    conv2's maps directly.
    """
    if isinstance(middle, bool) or not isinstance(middle, int) or middle < 0:
        raise ValueError(f"middle={middle!r}: give the number of 3x3 384-channel layers between conv2 and "
                         f"conv5 as a whole number, 0 or more (AlexNet has 2: conv3 and conv4)")
    act = ACTIVATIONS[activation]
    c1, c2, c3, c5, hidden = (max(1, round(c * width)) for c in (96, 256, 384, 256, 4096))
    features = nn.Sequential(
        # an nn.Conv2d that runs as a faster, equal space-to-depth convolution on CUDA
        SpaceToDepthConv2d(in_channels, c1, kernel_size=11, stride=4, padding=1), act(),
        *([LocalResponseNorm()] if lrn else []),
        _pool(overlap_pooling),
        nn.Conv2d(c1, c2, kernel_size=5, padding=2), act(),
        *([LocalResponseNorm()] if lrn else []),
        _pool(overlap_pooling),
        *_middle_layers(c2, c3, middle, act),
        nn.Conv2d(c3 if middle else c2, c5, kernel_size=3, padding=1), act(),
        _pool(overlap_pooling),
    )
    side = _spatial_size(features, image_size)
    if side < 1:
        raise ValueError(f"image_size={image_size} is too small: this stack needs at least {_smallest_input(features)} px")
    classifier = _classifier(c5 * side * side, hidden, num_classes, act, dropout)
    return xavier_init(AlexNet(features, classifier, in_channels, _smallest_input(features), image_size))


def alexnet_paper(num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.5,
                  two_gpus: bool = True) -> AlexNet:
    """The 2012 network as published: two GPU towers, LRN, overlapping pooling, 60,965,224 parameters.

    Input is 227x227, not the 224x224 the paper's text says: with an 11x11 kernel, stride 4 and no
    padding, only 227 gives the 55x55 first map of the paper's Figure 2 ((227 - 11) / 4 + 1 = 55).
    The two GPUs are the ``groups=2`` convolutions: conv2, conv4 and conv5 see only the kernel maps
    of their own GPU, while conv3 and the fully connected layers read both. LRN, too, normalises
    over the maps of one GPU (``groups=2``); ``alexnet_edu.two_gpus`` runs the halves apart.
    ``two_gpus=False`` builds the same network as if one GPU held it all (``groups=1`` everywhere).
    """
    g = 2 if two_gpus else 1
    features = nn.Sequential(
        nn.Conv2d(in_channels, 96, kernel_size=11, stride=4), nn.ReLU(), LocalResponseNorm(groups=g), _pool(True),
        nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=g), nn.ReLU(), LocalResponseNorm(groups=g), _pool(True),
        nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=g), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=g), nn.ReLU(), _pool(True),
    )
    side = _spatial_size(features, 227)
    classifier = _classifier(256 * side * side, 4096, num_classes, nn.ReLU, dropout)
    return paper_init(AlexNet(features, classifier, in_channels, _smallest_input(features), 227))


def lenet(num_classes: int = 10) -> nn.Sequential:
    """LeNet-5 as d2l.ai writes it: sigmoid units, average pooling, 28x28 grey input, 61,706 parameters."""
    return xavier_init(nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, num_classes),
    ))
