"""Profiles: how much training a chapter does, chosen once for the machine it runs on.

* ``full``: d2l.ai's setting (all 60,000 images at 224 px, 10 epochs, batch 128, lr 0.01) with the
  paper's momentum and weight decay. Seconds on a GPU.
* ``small-gpu``: the default on GPUs below the A100/H100 class, such as Colab's T4: all the data
  for 10 epochs as in ``full``, but at 96 px, so that a chapter takes minutes there, not an hour.
* ``cpu``: the default without a GPU. A balanced subset at 96 px, small enough that a chapter's
  training takes about two minutes on a 2-core laptop, large enough that the curves visibly learn.
* ``smoke``: a few hundred images for a few seconds; what the tests run. Its numbers mean nothing.

``ALEXNET_EDU_PROFILE`` picks one; otherwise :func:`default_profile_name` picks by the machine.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import torch

__all__ = ["Profile", "PROFILES", "default_profile_name", "get_profile", "machine_name"]


@dataclass(frozen=True)
class Profile:
    name: str
    train_size: int | None   # None: all 60,000
    test_size: int | None    # None: all 10,000
    resolution: int          # images are resized to resolution x resolution
    epochs: int
    batch_size: int
    lr: float
    meaning: str

    def describe(self) -> str:
        train = "all 60,000" if self.train_size in (None, 60_000) else f"{self.train_size:,}"
        test = "all 10,000" if self.test_size in (None, 10_000) else f"{self.test_size:,}"
        return (f"profile '{self.name}': {train} training images, {test} test images, "
                f"{self.resolution}x{self.resolution} px, {self.epochs} epoch(s), batch {self.batch_size}, "
                f"lr {self.lr}. {self.meaning}")

    def as_dict(self) -> dict:
        return asdict(self)


PROFILES = {
    "full": Profile("full", None, None, 224, 10, 128, 0.01,
                    "d2l.ai's setting with the paper's momentum and weight decay, at full size (on Fashion-MNIST: "
                    "accuracies do not compare with the paper's ImageNet figures)."),
    "small-gpu": Profile("small-gpu", None, None, 96, 10, 128, 0.01,
                         "For GPUs slower than the A100/H100 class (Colab's T4): the full recipe on all the "
                         "data, at 96 px instead of 224, so that a chapter takes minutes."),
    "cpu": Profile("cpu", 6000, 2000, 96, 3, 32, 0.02,
                   "A couple of minutes on a laptop CPU: a class-balanced subset, smaller images and fewer "
                   "epochs than the full recipe, so accuracies are lower than on a GPU."),
    "smoke": Profile("smoke", 160, 100, 96, 1, 32, 0.02,
                     "A seconds-long check that the code runs, used by the tests; its numbers mean nothing."),
}


def default_profile_name() -> str:
    """``full`` on data-centre GPUs of the A100 and H100 class (compute capability 8.0, 9.0 and later),
    ``small-gpu`` on other GPUs (the T4 is 7.5, the V100 7.0, the A10 8.6, the L4 8.9: a full run
    takes them several times as long), ``cpu`` without a GPU."""
    if not torch.cuda.is_available():
        return "cpu"
    major, minor = torch.cuda.get_device_capability()
    return "full" if (major, minor) == (8, 0) or major >= 9 else "small-gpu"


def get_profile(name: str | None = None) -> Profile:
    """The named profile, else ``ALEXNET_EDU_PROFILE``, else :func:`default_profile_name`'s."""
    name = name or os.environ.get("ALEXNET_EDU_PROFILE") or default_profile_name()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)} "
                         f"(set ALEXNET_EDU_PROFILE or pass profile=)")
    return PROFILES[name]


def machine_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model and core count: what a run's history and a chapter's stamp record."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    except OSError:   # not Linux
        pass
    return f"{model or platform.processor() or platform.machine()}, {os.cpu_count()} cores"
