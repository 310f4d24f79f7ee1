"""The course notes' own pipeline, for side-by-side comparisons: d2l.ai's Fashion-MNIST loaders.

``d2l.load_data_fashion_mnist`` reads ``../data/FashionMNIST/raw`` relative to the working directory
and cannot be told otherwise. :func:`d2l_loaders` calls it unchanged from a temporary folder whose
``../data`` points at the copy that ``alexnet_edu.data`` found, then (optionally) restricts the two
loaders to given indices, keeping d2l's batch size, shuffling, PIL resize and worker count.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch

from .data import find_fashion_mnist

__all__ = ["d2l_loaders"]


@contextlib.contextmanager
def _working_dir_with_d2l_data():
    raw = find_fashion_mnist() / "FashionMNIST" / "raw"
    with tempfile.TemporaryDirectory(prefix="d2l-") as tmp:
        (Path(tmp) / "data" / "FashionMNIST").mkdir(parents=True)
        (Path(tmp) / "data" / "FashionMNIST" / "raw").symlink_to(raw)
        (Path(tmp) / "cwd").mkdir()
        old = os.getcwd()
        os.chdir(Path(tmp) / "cwd")
        try:
            yield
        finally:
            os.chdir(old)


def d2l_loaders(batch_size: int, resize: int | None = 224, train_indices=None, test_indices=None):
    """``d2l.load_data_fashion_mnist(batch_size, resize)``, optionally on subsets of both splits."""
    from d2l import torch as d2l

    with _working_dir_with_d2l_data():
        train_iter, test_iter = d2l.load_data_fashion_mnist(batch_size, resize=resize)
    # torchvision read the files into memory above, so the loaders work after the folder is gone.

    def restrict(loader, indices, shuffle):
        if indices is None:
            return loader
        subset = torch.utils.data.Subset(loader.dataset, [int(i) for i in indices])
        return torch.utils.data.DataLoader(subset, batch_size, shuffle=shuffle,
                                           num_workers=d2l.get_dataloader_workers())

    return restrict(train_iter, train_indices, True), restrict(test_iter, test_indices, False)
