"""Interactive explorers for the notebooks (ipywidgets), and their static stand-ins for the website."""

from __future__ import annotations

import functools

import ipywidgets as widgets
import pandas as pd
import torch
from IPython.display import display
from torch import nn

from .models import alexnet

__all__ = ["feature_shapes", "shape_explorer"]


@functools.lru_cache(maxsize=1)
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
    return widgets.interactive(
        show,
        image_size=widgets.IntSlider(224, 60, 320, description="input size (px)", style=style),
        kernel=widgets.IntSlider(11, 3, 15, description="conv1 kernel", style=style),
        stride=widgets.IntSlider(4, 1, 6, description="conv1 stride", style=style),
        padding=widgets.IntSlider(1, 0, 5, description="conv1 padding", style=style),
    )
