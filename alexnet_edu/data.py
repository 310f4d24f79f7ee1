"""Fashion-MNIST: find it, load it whole onto the training device, cut it into batches there.

Where the data comes from, first match wins:

1. ``root=`` given to :func:`load_fashion_mnist`, else the ``ALEXNET_EDU_DATA`` variable: a folder
   with the four IDX files, gzipped or not, or torchvision's ``FashionMNIST/raw/`` layout;
2. the user cache (``ALEXNET_EDU_CACHE``, else ``~/.cache/alexnet-edu``), whose files are checked
   against the published bytes: one that differs (an interrupted download) is deleted and fetched again;
3. Debian's ``dataset-fashion-mnist`` package in ``/usr/share/datasets/fashion-mnist/``,
   decompressed into the user cache once and checked byte for byte;
4. a download by ``torchvision.datasets.FashionMNIST`` into the user cache, when online.

Reading the IDX format is torchvision's job; this module only finds files and checks them.

The whole dataset is one uint8 tensor (47 MB for the 60,000 training images) that lives on the
training device, and :func:`batches` resizes each batch to the model's resolution there, in one
call. That replaces d2l's per-image PIL resize in DataLoader workers, the slow part of its pipeline.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
import torchvision

from .augment import random_crop_flip

__all__ = [
    "CLASSES", "FILES", "MEAN", "STD",
    "DataNotFoundError", "CorruptDataError", "FashionMNIST",
    "cache_dir", "find_fashion_mnist", "load_fashion_mnist", "balanced_subset", "batches", "to_model_input",
    "validation_split",
]

CLASSES = tuple(torchvision.datasets.FashionMNIST.classes)
FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
# MD5 of the *decompressed* files of the published dataset. (torchvision's own sums are of its
# .gz downloads; Debian's .gz files were compressed differently, so only the inner bytes compare.)
PUBLISHED_MD5 = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
MEAN, STD = 0.2860, 0.3530  # of the training pixels, scaled to [0, 1]

HOW_TO_GET_IT = """\
Fashion-MNIST was not found. Any one of these works:
  - Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist   (installs {system})
  - online: it is downloaded into {cache} on first use (torchvision.datasets.FashionMNIST)
  - by hand: put train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz
    and t10k-labels-idx1-ubyte.gz (from github.com/zalandoresearch/fashion-mnist) in a folder and
    set ALEXNET_EDU_DATA=/that/folder, or pass root='/that/folder'
Looked in: {looked}"""


class DataNotFoundError(FileNotFoundError):
    """No copy of Fashion-MNIST anywhere we looked, and no way to download one."""


class CorruptDataError(ValueError):
    """A data file exists but is truncated or not what it should be."""


@dataclass
class FashionMNIST:
    """The whole dataset as tensors: images uint8 (N, 1, 28, 28), labels int64 (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    source: str
    classes: tuple[str, ...] = CLASSES

    def to(self, device: torch.device | str) -> "FashionMNIST":
        t = [x.to(device) for x in (self.train_images, self.train_labels, self.test_images, self.test_labels)]
        return FashionMNIST(*t, source=self.source, classes=self.classes)

    def subset(self, train_size: int | None, test_size: int | None, seed: int = 0) -> "FashionMNIST":
        """A class-balanced, deterministic subset (``None`` keeps a split whole)."""
        tr = balanced_subset(self.train_labels, train_size, seed)
        te = balanced_subset(self.test_labels, test_size, seed)
        return FashionMNIST(self.train_images[tr], self.train_labels[tr], self.test_images[te],
                            self.test_labels[te], source=self.source, classes=self.classes)


def cache_dir() -> Path:
    return Path(os.environ.get("ALEXNET_EDU_CACHE") or Path.home() / ".cache" / "alexnet-edu")


def find_fashion_mnist(root: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """Return a folder that torchvision reads as ``FOLDER/FashionMNIST/raw/``, preparing it if needed."""
    looked = []
    explicit = root if root is not None else os.environ.get("ALEXNET_EDU_DATA")
    if explicit:
        source = Path(explicit).expanduser()
        if _has_raw_files(source):
            return source
        if _has_files(source):
            # One cache folder per source folder and version of its files: decompressed once.
            stamp = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(source.iterdir()) if p.is_file()]
            digest = hashlib.sha1(f"{source.resolve()}{stamp}".encode()).hexdigest()[:10]
            target = cache_dir() / f"from-{digest}"
            if not _has_raw_files(target):
                _decompress_all(source, target / "FashionMNIST" / "raw", published=False)
            return target
        raise DataNotFoundError(
            f"{source} (from {'root=' if root is not None else 'ALEXNET_EDU_DATA'}) does not hold the four "
            f"Fashion-MNIST files {', '.join(FILES)} (.gz or not), nor a FashionMNIST/raw/ folder with them"
        )

    cache = cache_dir()
    looked.append(str(cache))
    if _has_raw_files(cache) and not _drop_unpublished(cache / "FashionMNIST" / "raw"):
        return cache
    looked.append(str(SYSTEM_DIR))
    if _has_files(SYSTEM_DIR):
        _decompress_all(SYSTEM_DIR, cache / "FashionMNIST" / "raw", published=True)
        return cache
    if download:
        looked.append("the internet (torchvision download)")
        try:
            torchvision.datasets.FashionMNIST(cache, download=True)
            return cache
        except Exception as exc:  # offline, proxy, server down: all mean the same to the reader
            looked[-1] += f": failed with {type(exc).__name__}: {exc}"
    raise DataNotFoundError(HOW_TO_GET_IT.format(system=SYSTEM_DIR, cache=cache, looked="; ".join(looked)))


def load_fashion_mnist(root: str | os.PathLike | None = None, device: torch.device | str = "cpu",
                       *, download: bool = True) -> FashionMNIST:
    """Find Fashion-MNIST and return it whole, as uint8 tensors on ``device``."""
    folder = find_fashion_mnist(root, download=download)
    splits = []
    for train in (True, False):
        prefix = "train" if train else "t10k"
        try:
            ds = torchvision.datasets.FashionMNIST(folder, train=train, download=False)
        except (AssertionError, RuntimeError, ValueError, KeyError, OSError) as exc:
            raise CorruptDataError(
                f"could not read {prefix}-images-idx3-ubyte / {prefix}-labels-idx1-ubyte in "
                f"{folder / 'FashionMNIST' / 'raw'}: {type(exc).__name__} {exc}. The files are truncated "
                f"or not IDX files: delete them and get them again (see alexnet-edu data)"
            ) from exc
        if len(ds.data) != len(ds.targets):
            raise CorruptDataError(f"{prefix} split in {folder}: {len(ds.data)} images but {len(ds.targets)} labels")
        splits += [ds.data.unsqueeze(1).to(device), ds.targets.to(device)]
    return FashionMNIST(*splits, source=str(folder / "FashionMNIST" / "raw"))


def balanced_subset(labels: torch.Tensor, size: int | None, seed: int = 0) -> torch.Tensor:
    """Indices of ``size`` examples, the same number from each class (up to rounding), fixed by ``seed``."""
    if size is None or size >= len(labels):
        return torch.arange(len(labels), device=labels.device)
    device, labels = labels.device, labels.cpu()
    classes = labels.unique()
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    per_class = [order[labels[order] == c] for c in classes]
    picked = [idx[: size // len(classes) + (i < size % len(classes))] for i, idx in enumerate(per_class)]
    return torch.cat(picked).sort().values.to(device)


def validation_split(labels: torch.Tensor, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``(train, validation)``: ``size`` class-balanced examples held out for validation,
    fixed by ``seed``, and all the others for training."""
    if not 0 < size < len(labels):
        raise ValueError(f"validation_size={size}: hold out between 1 and {len(labels) - 1} of the "
                         f"{len(labels):,} training images")
    held = balanced_subset(labels, size, seed)
    keep = torch.ones(len(labels), dtype=torch.bool, device=labels.device)
    keep[held] = False
    return keep.nonzero().squeeze(1), held


def to_model_input(images: torch.Tensor, resolution: int, *, augment: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """uint8 (N, 1, 28, 28) → normalised float (N, 1, resolution, resolution), in one resize call."""
    x = images.float().div_(255).sub_(MEAN).div_(STD)
    if augment:
        return random_crop_flip(x, resolution, generator=generator)
    if x.shape[-1] == resolution:
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)


def batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int, resolution: int, *,
            shuffle: bool = False, augment: bool = False,
            generator: torch.Generator | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(inputs, labels)`` batches, resized on the tensors' own device."""
    n = len(labels)
    order = torch.randperm(n, generator=generator).to(labels.device) if shuffle else torch.arange(n, device=labels.device)
    for start in range(0, n, batch_size):
        idx = order[start : start + batch_size]
        yield to_model_input(images[idx], resolution, augment=augment, generator=generator), labels[idx]


# --- finding and preparing files -----------------------------------------------------------------

def _has_raw_files(root: Path) -> bool:
    return all((root / "FashionMNIST" / "raw" / name).is_file() for name in FILES)


def _has_files(folder: Path) -> bool:
    return all((folder / name).is_file() or (folder / f"{name}.gz").is_file() for name in FILES)


def _drop_unpublished(raw: Path) -> list[str]:
    """Check the cache's files against the published bytes (md5); delete any that differ, so that
    they are fetched again, and say so. Returns the names deleted."""
    bad = [name for name in FILES if _md5(raw / name) != PUBLISHED_MD5[name]]
    if bad:
        warnings.warn(f"{', '.join(bad)} in {raw} differ from the published Fashion-MNIST (an interrupted "
                      f"or corrupt download or copy?): deleted, and fetched again")
        for name in bad:
            (raw / name).unlink()
    return bad


def _md5(path: Path) -> str:
    md5 = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            md5.update(chunk)
    return md5.hexdigest()


def _decompress_all(source: Path, target: Path, *, published: bool) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        _copy_checked(source, name, target / name, published)


def _copy_checked(source: Path, name: str, dest: Path, published: bool) -> None:
    """Copy (un-gzipping if needed) one file into place, or fail with a sentence naming it."""
    src = source / f"{name}.gz" if (source / f"{name}.gz").is_file() else source / name
    # a temporary file of its own: another kernel or process may be filling the cache at the same time
    handle, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f"{dest.name}.", suffix=".partial")
    tmp = Path(tmp)
    md5 = hashlib.md5()
    try:
        with open(handle, "wb") as fout, (gzip.open(src) if src.suffix == ".gz" else open(src, "rb")) as fin:
            while chunk := fin.read(1 << 20):
                md5.update(chunk)
                fout.write(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        tmp.unlink(missing_ok=True)
        raise CorruptDataError(
            f"{src} is truncated or corrupt ({exc}). Get a fresh copy: "
            f"{'sudo apt-get install --reinstall dataset-fashion-mnist' if published else 'download it again'}"
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if published and md5.hexdigest() != PUBLISHED_MD5[name]:
        tmp.unlink(missing_ok=True)
        raise CorruptDataError(
            f"{src} decompresses to bytes that differ from the published Fashion-MNIST "
            f"(md5 {md5.hexdigest()}, expected {PUBLISHED_MD5[name]}). "
            f"Reinstall it: sudo apt-get install --reinstall dataset-fashion-mnist"
        )
    os.replace(tmp, dest)   # atomic: a reader sees the old file or the whole new one
