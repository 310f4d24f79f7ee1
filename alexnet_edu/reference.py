"""The book's reference run: a GPU training in the full profile whose History and convolutional
weights (fp16, a few MB) are kept in ``book/data/reference/`` so that a CPU reader can see them.

Record one on a GPU with::

    alexnet-edu train --model alexnet --profile full --out book/data/reference --save-convs

which writes ``history.json`` (with machine, commit and wall time in its settings) and
``conv_weights_fp16.pt``; the training checkpoint it also writes there is not committed.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import torch
from torch import nn

__all__ = ["CONV_WEIGHTS", "save_conv_weights", "load_conv_weights", "git_commit"]

CONV_WEIGHTS = "conv_weights_fp16.pt"


def save_conv_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Save the ``features`` part of ``model`` (all its convolutions) in fp16."""
    state = {k: v.detach().to("cpu", torch.float16) for k, v in model.features.state_dict().items()}
    torch.save(state, path)


def load_conv_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load weights saved by :func:`save_conv_weights` into ``model.features`` (as fp32)."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.features.load_state_dict({k: v.float() for k, v in state.items()})
    return model


def git_commit() -> str:
    """The commit of the code that is running, or 'unknown' outside a git checkout."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
