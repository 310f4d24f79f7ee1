"""Interactive explorers for the notebooks (ipywidgets), and their static stand-ins for the website."""

from __future__ import annotations

import functools
import os

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import display
from torch import nn

from .data import to_model_input
from .inside import conv_layer_names, feature_maps, kernel_spectrum
from .models import alexnet

__all__ = ["draw_kernel", "feature_map_explorer", "feature_shapes", "kernel_explorer", "shape_explorer"]


@functools.lru_cache(maxsize=1)
def explorer(show, **controls: widgets.ValueWidget) -> widgets.Widget | None:
    """``ipywidgets.interactive(show, **controls)``: ``show`` redrawn whenever a control moves.

    Where no one can move them (an autograder sets ``ALEXNET_EDU_NO_WIDGETS=1``), ``show`` draws
    the controls' first setting once and no widget is made: executed outside a browser, the output
    widget behind ``interactive`` sometimes never lets the cell finish (jupyter/nbclient#312; seen
    here under nbclient and under otter's nbconvert, with the kernel idle).
    """
    if os.environ.get("ALEXNET_EDU_NO_WIDGETS"):
        show(**{name: control.value for name, control in controls.items()})
        return None
    return widgets.interactive(show, **controls)


def _alexnet_features() -> nn.Sequential:
    return alexnet().features


def feature_shapes(image_size: int = 224, kernel: int = 11, stride: int = 4, padding: int = 1) -> pd.DataFrame:
    """Output shape of every layer of AlexNet's convolution stack, with conv1 set to the given
    kernel, stride and padding; found by running a blank image through the real layers."""
    conv1 = nn.Conv2d(1, 96, kernel_size=kernel, stride=stride, padding=padding)
    features = nn.Sequential(conv1, *list(_alexnet_features())[1:])
    rows, x = [], torch.zeros(1, 1, image_size, image_size)
    with torch.no_grad():
        for i, layer in enumerate(features):
            if isinstance(layer, nn.ReLU):
                continue
            x = layer(x)
            rows.append({"layer": f"features.{i}", "type": type(layer).__name__,
                         "output shape": "x".join(map(str, x.shape[1:]))})
    return pd.DataFrame(rows)


def shape_explorer() -> widgets.Widget:
    """Sliders for the input size and conv1's kernel, stride and padding; a table of the shapes."""
    def show(image_size, kernel, stride, padding):
        try:
            table = feature_shapes(image_size, kernel, stride, padding)
        except RuntimeError as exc:  # a map shrank to nothing somewhere in the stack
            print(f"This combination does not fit: {str(exc).splitlines()[0]}")
            return
        flat = table["output shape"].iloc[-1].split("x")
        display(table.set_index("layer"))
        print(f"the first fully connected layer would need {int(flat[0]) * int(flat[1]) * int(flat[2]):,} inputs")

    style = {"description_width": "110px"}
    return explorer(
        show,
        image_size=widgets.IntSlider(224, 60, 320, description="input size (px)", style=style),
        kernel=widgets.IntSlider(11, 3, 15, description="conv1 kernel", style=style),
        stride=widgets.IntSlider(4, 1, 6, description="conv1 stride", style=style),
        padding=widgets.IntSlider(1, 0, 5, description="conv1 padding", style=style),
    )


def feature_map_explorer(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, classes, resolution: int,
                         maps_shown: int = 16) -> widgets.Widget:
    """Pick a test image by class, a layer and a first channel; see that layer's feature maps."""
    device = next(model.parameters()).device
    layer_names = list(conv_layer_names(model))

    def show(label, example, layer, first_channel):
        index = _example_of(labels, classes, label, example)
        x = to_model_input(images[index : index + 1].to(device), resolution)
        maps = feature_maps(model, x)[layer][0].cpu()
        first = max(0, min(first_channel, maps.shape[0] - maps_shown))   # a full page where there is one
        channels = range(first, min(first + maps_shown, maps.shape[0]))
        fig, axes = plt.subplots(2, maps_shown // 2 + 1, figsize=(12, 3.2))
        axes[0, 0].imshow(images[index, 0].cpu().numpy(), cmap="gray_r")
        axes[0, 0].set_title(label, fontsize=8)
        axes[1, 0].axis("off")
        for ax in axes[:, 1:].T.flatten()[len(channels):]:   # a layer with fewer maps than panels
            ax.axis("off")
        for ax, c in zip(axes[:, 1:].T.flatten(), channels):
            ax.imshow(maps[c].numpy(), cmap="viridis")
            ax.set_title(f"{layer} #{c}", fontsize=7)
        for ax in axes.flatten():
            ax.set_xticks([]); ax.set_yticks([])
        plt.tight_layout()
        plt.show()

    return explorer(
        show, **_image_picker(classes),
        layer=widgets.Dropdown(options=layer_names, value=layer_names[0], description="layer"),
        first_channel=widgets.IntSlider(0, 0, 240, step=16, description="first channel"),
    )


def kernel_explorer(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, classes, resolution: int) -> widgets.Widget:
    """Pick one of conv1's kernels and a test image: the kernel, the frequencies it passes, and what
    it makes of the image (its feature map, after the activation that follows conv1)."""
    def show(kernel, label, example):
        index = _example_of(labels, classes, label, example)
        fig, axes = plt.subplots(1, 4, figsize=(12, 3))
        draw_kernel(axes, model, kernel, images[index], resolution, label)
        plt.tight_layout()
        plt.show()

    kernels = model.features[0].out_channels
    return explorer(
        show, kernel=widgets.IntSlider(0, 0, kernels - 1, description="kernel"), **_image_picker(classes))


def draw_kernel(axes, model: nn.Module, kernel: int, image: torch.Tensor, resolution: int, label: str) -> None:
    """Draw conv1's kernel number ``kernel`` on four axes, replacing what they showed: its weights,
    the frequencies it passes (``kernel_spectrum``), the uint8 test ``image`` (1, H, W) of class
    ``label``, and the kernel's feature map of it, after the activation that follows conv1."""
    conv1 = model.features[0]
    first_layer = model.features[: conv_layer_names(model)["conv1"] + 1]   # conv1 and its own activation
    weights = conv1.weight[kernel, 0].detach().cpu()
    x = to_model_input(image[None].to(conv1.weight.device), resolution)
    with torch.no_grad():
        response = first_layer(x)[0, kernel].cpu()
    panels = [(weights, "gray", f"conv1 kernel #{kernel} ({weights.shape[0]}x{weights.shape[1]})"),
              (kernel_spectrum(weights), "magma", "frequencies it passes (|FFT|)"),
              (image[0].cpu(), "gray_r", f"a test image: {label}"),
              (response, "viridis", f"its feature map ({response.shape[0]}x{response.shape[1]})")]
    for ax, (picture, cmap, title) in zip(axes, panels):
        ax.clear()
        ax.imshow(picture.numpy(), cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]); ax.set_yticks([])


def _image_picker(classes) -> dict[str, widgets.Widget]:
    """A class dropdown and an example slider: which test image an explorer shows."""
    return dict(label=widgets.Dropdown(options=list(classes), value=classes[0], description="class"),
                example=widgets.IntSlider(0, 0, 9, description="example"))


def _example_of(labels: torch.Tensor, classes, label: str, example: int) -> int:
    """The index of the ``example``-th test image of class ``label`` (the last one if there are fewer)."""
    candidates = (labels == list(classes).index(label)).nonzero().flatten()
    return int(candidates[min(example, len(candidates) - 1)])
