"""Pre-training and fine-tuning: the book's Fashion-MNIST network put to work on another, small task.

The other task is scikit-learn's handwritten digits: 1,797 grey 8x8 images of the digits 0-9 (a copy of
the test set of the UCI "optical recognition of handwritten digits" data) that ship inside scikit-learn,
so nothing is downloaded. :func:`load_digits_task` returns them in the same container as Fashion-MNIST,
so :func:`alexnet_edu.fit` trains on them unchanged.

Three ways to learn the new task from ``n`` labelled images (:func:`compare` runs them all):

* ``from scratch``: a fresh AlexNet trained on the ``n`` images;
* ``linear probe``: the pre-trained convolutions stay frozen and a logistic regression reads one layer's
  output (:func:`layer_features`, :func:`linear_probe`);
* ``fine-tuned``: the pre-trained convolutions with a fresh classifier; first the classifier alone
  learns, then the whole network, with a learning rate ten times smaller (:func:`fine_tune`).

:func:`imagenet_alexnet` loads torchvision's ImageNet weights where they can be downloaded (in Colab):
that network is the 64-192-384-256-256 variant of Krizhevsky's 2014 "One weird trick" paper, not the
2012 network, and it takes colour images, so :class:`GreyToImageNet` turns ours into what it expects.
"""

from __future__ import annotations

import math
import os
import pickle
import time
import warnings
from dataclasses import dataclass
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F
import torchvision
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from .data import MEAN, STD, FashionMNIST, to_model_input, validation_split
from .models import AlexNet, alexnet
from .profiles import Profile
from .reference import load_conv_weights
from .train import default_device, fit

__all__ = ["DIGITS", "PLANS", "GreyToImageNet", "ImageNetAlexNet", "Plan", "compare", "fine_tune", "from_scratch",
           "imagenet_alexnet", "layer_features", "linear_probe", "load_digits_task", "pixel_probe",
           "pretrained_network", "repeat_to"]

DIGITS = tuple(str(d) for d in range(10))


@dataclass(frozen=True)
class Plan:
    """How much of the comparison a profile runs: the training-set ``sizes`` (labelled images drawn from
    the pool of 1,000), the number of examples every trained run sees (``images``: the labelled ones,
    repeated), and the ``seeds``."""
    sizes: tuple[int, ...]
    images: int
    seeds: tuple[int, ...] = (0, 1, 2)


PLANS = {
    "full": Plan((10, 20, 50, 100, 200, 500, 1000), 20_000),
    "small-gpu": Plan((10, 20, 50, 100, 200, 500, 1000), 20_000),
    "cpu": Plan((20, 100, 1000), 2_000),      # a few minutes on a 2-core laptop
    "smoke": Plan((20,), 64, (0,)),           # seconds, for the tests; its numbers mean nothing
}


def load_digits_task(test_size: int = 497, validation_size: int = 300,
                     seed: int = 0) -> tuple[FashionMNIST, FashionMNIST]:
    """scikit-learn's 1,797 digits as uint8 images (N, 1, 8, 8), scaled from 0-16 to 0-255 like
    Fashion-MNIST's pixels, split once into three parts: ``test_size`` images for the final figures
    and ``validation_size`` images for choices such as which layer to probe, both class-balanced, and
    the rest (1,000 by default, about 100 of each digit) as the pool training sets are drawn from. Returns ``(task, tuning)``: the training pool with the
    test images, and the same pool with the validation images in the place of the test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = torch.tensor(digits.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    labels = torch.tensor(digits.target, dtype=torch.int64)
    rest, test = validation_split(labels, test_size, seed)
    pool, held = validation_split(labels[rest], validation_size, seed)
    pool, held = rest[pool], rest[held]
    source = "scikit-learn load_digits (8x8 handwritten digits)"
    task = FashionMNIST(images[pool], labels[pool], images[test], labels[test], source=source, classes=DIGITS)
    tuning = FashionMNIST(images[pool], labels[pool], images[held], labels[held], source=source, classes=DIGITS)
    return task, tuning


def repeat_to(data: FashionMNIST, images: int) -> FashionMNIST:
    """``data`` with its training images repeated until there are at least ``images`` of them, so that one
    epoch over the copy is a run of about ``images`` steps' worth of examples whatever the training-set
    size: 20 labelled images get as many optimiser steps as 1,000 do."""
    n = len(data.train_labels)
    if n < 1:
        raise ValueError("no training images to repeat")
    k = max(1, math.ceil(images / n))
    return FashionMNIST(data.train_images.repeat(k, 1, 1, 1), data.train_labels.repeat(k), data.test_images,
                        data.test_labels, source=data.source, classes=data.classes)


def pretrained_network(conv_weights: str | os.PathLike, resolution: int, num_classes: int = 10) -> AlexNet:
    """AlexNet with the convolutions of a saved run (``conv_weights_fp16.pt`` of the reference run) and a
    fresh, randomly initialised classifier for the new task's ``num_classes``.

    The convolutions do not depend on the image size, so weights trained at 224 px load into a network
    built for 96 px; only the first fully connected layer's input size changes, and it is new anyway."""
    return load_conv_weights(alexnet(num_classes=num_classes, image_size=resolution), conv_weights)


def from_scratch(model: nn.Module, data: FashionMNIST, profile: Profile, images: int, seed: int = 0) -> float:
    """Train a fresh ``model`` on ``data`` for about ``images`` examples; its test accuracy."""
    history = fit(model, repeat_to(data, images), profile=profile, epochs=1, seed=seed, progress=False,
                  describe=False, live_plot=False)
    return history.test_acc[-1]     # fit tests the trained model on data's test images


def fine_tune(model: nn.Module, data: FashionMNIST, profile: Profile, images: int, seed: int = 0) -> float:
    """Fine-tune a pre-trained ``model`` (its ``features`` pre-trained, its ``classifier`` new) in two
    halves of about ``images`` examples in all: first the classifier alone at the profile's learning
    rate, then the whole network at a tenth of it, so that the large early updates of a random
    classifier do not spoil the pre-trained convolutions. Returns the test accuracy."""
    half = repeat_to(data, images // 2)
    model.features.requires_grad_(False)     # SGD skips parameters without gradients
    fit(model, half, profile=profile, epochs=1, seed=seed, progress=False, describe=False, live_plot=False)
    model.features.requires_grad_(True)
    history = fit(model, half, profile=profile, epochs=1, lr=profile.lr / 10, seed=seed, progress=False,
                  describe=False, live_plot=False)
    return history.test_acc[-1]


@torch.no_grad()
def layer_features(model: nn.Module, images: torch.Tensor, resolution: int, layer: str, *, pooled: int = 2,
                   batch_size: int = 256) -> torch.Tensor:
    """One layer's output for uint8 ``images``, one flattened row per image: ``"conv1"`` ... ``"conv5"``
    (after its ReLU, average-pooled to ``pooled`` x ``pooled``, so that each layer gives a few hundred
    to a few thousand numbers) or ``"pool5"`` (the whole convolutional part's output, as the classifier
    reads it). ``model`` is any network with a ``features`` stack of convolutions."""
    convs = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    upto = {f"conv{k + 1}": model.features[: i + 2] for k, i in enumerate(convs)}   # conv, ReLU
    upto["pool5"] = model.features
    if layer not in upto:
        raise ValueError(f"unknown layer {layer!r}: choose one of {', '.join(upto)}")
    model.eval()
    device = next(model.parameters()).device
    rows = []
    for chunk in images.split(batch_size):
        out = upto[layer](to_model_input(chunk.to(device), resolution))
        if layer != "pool5":
            out = F.adaptive_avg_pool2d(out, pooled)
        rows.append(out.flatten(1).float().cpu())
    return torch.cat(rows)


def linear_probe(model: nn.Module, data: FashionMNIST, resolution: int, layer: str) -> float:
    """Test accuracy of a logistic regression (standardised inputs, scikit-learn's default L2 penalty)
    trained on one frozen layer's features of ``data``'s training images: how much of the new task
    that layer already separates, with nothing in the network trained."""
    return _logistic_regression(layer_features(model, data.train_images, resolution, layer),
                                layer_features(model, data.test_images, resolution, layer), data)


def pixel_probe(data: FashionMNIST) -> float:
    """The same logistic regression on the raw 8x8 pixels: what the task needs without any network."""
    return _logistic_regression(data.train_images.flatten(1).float(), data.test_images.flatten(1).float(), data)


def _logistic_regression(train_x: torch.Tensor, test_x: torch.Tensor, data: FashionMNIST) -> float:
    """Test accuracy of a logistic regression fitted to ``train_x`` and ``data``'s training labels."""
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():    # thousands of features and 20 images: lbfgs may stop early
        warnings.simplefilter("ignore", category=UserWarning)
        probe.fit(train_x.numpy(), data.train_labels.cpu().numpy())
    return float(probe.score(test_x.numpy(), data.test_labels.cpu().numpy()))


def compare(task: FashionMNIST, profile: Profile, sizes: tuple[int, ...], *, scratch: Callable[[], nn.Module],
            pretrained: Callable[[], nn.Module], probe_layer: str, images: int,
            seeds: tuple[int, ...] = (0, 1, 2), label: str = "") -> pd.DataFrame:
    """For every training-set size and seed: a class-balanced subset of ``task``'s training pool (drawn
    by the seed), then the three ways to learn it and, for scale, :func:`pixel_probe`. One row per
    (method, size, seed), with the test accuracy and the seconds it took."""
    rows = []
    for n in sizes:
        for seed in seeds:
            data = task.subset(n, None, seed=seed)
            runs = {"from scratch": lambda: from_scratch(scratch(), data, profile, images, seed),
                    "linear probe": lambda: linear_probe(pretrained().to(default_device()), data, profile.resolution,
                                                          probe_layer),
                    "fine-tuned": lambda: fine_tune(pretrained(), data, profile, images, seed),
                    "pixels": lambda: pixel_probe(data)}
            for method, run in runs.items():
                start = time.perf_counter()
                torch.manual_seed(seed)      # the new layers' initial weights
                accuracy = run()
                rows.append({"weights": label, "method": method, "images": n, "seed": seed,
                             "test acc": accuracy, "seconds": time.perf_counter() - start})
        done = [r for r in rows if r["images"] == n]
        print(f"{n:>5} labelled images: " + ", ".join(
            f"{m} {sum(r['test acc'] for r in done if r['method'] == m) / len(seeds):.3f}" for m in runs)
            + f" (mean of {len(seeds)} seeds, {sum(r['seconds'] for r in done):.0f} s)")
    return pd.DataFrame(rows)


class GreyToImageNet(nn.Module):
    """Turn the book's inputs (grey, normalised with Fashion-MNIST's mean and std) into what an ImageNet
    network expects: three equal colour channels, normalised with ImageNet's per-channel mean and std."""

    def __init__(self, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grey = x * STD + MEAN                      # back to pixel values between 0 and 1
        return (grey.expand(-1, 3, -1, -1) - self.mean) / self.std


class ImageNetAlexNet(nn.Module):
    """torchvision's AlexNet rearranged like the book's: ``features`` (the grey-to-colour step, then its
    convolutions) and ``classifier`` (its average pooling and fully connected layers), with a fresh last
    layer for ``num_classes``."""

    def __init__(self, net: torchvision.models.AlexNet, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(GreyToImageNet(), *net.features)
        last = net.classifier[-1]
        self.classifier = nn.Sequential(net.avgpool, nn.Flatten(), *net.classifier[:-1],
                                        nn.Linear(last.in_features, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def imagenet_alexnet(num_classes: int = 10, *, path: str | os.PathLike | None = None) -> ImageNetAlexNet | None:
    """torchvision's AlexNet with its ImageNet weights (``IMAGENET1K_V1``) as an :class:`ImageNetAlexNet`;
    None, with a warning that says why, when the weights cannot be had (offline). ``path`` loads a saved
    ``state_dict`` of torchvision's AlexNet instead of downloading one (the tests use a stand-in)."""
    weights = torchvision.models.AlexNet_Weights.IMAGENET1K_V1
    try:
        if path is None:
            net = torchvision.models.alexnet(weights=weights)
        else:
            net = torchvision.models.alexnet(weights=None)
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except (OSError, RuntimeError, pickle.UnpicklingError) as error:   # no network (URLError is an OSError),
        # a file that is not a state_dict, or one of another architecture
        warnings.warn(f"no ImageNet weights: torchvision's AlexNet weights could not be loaded ({error}). "
                      f"Offline? With internet, as in Colab, they download from {weights.url}")
        return None
    return ImageNetAlexNet(net, num_classes)
