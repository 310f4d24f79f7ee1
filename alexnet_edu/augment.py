"""The paper's data augmentation (section 4.1), done on whole batches on the training device.

* Random crops and horizontal flips: the paper takes random 224x224 patches of 256x256 images and
  their mirror images. :func:`random_crop_flip` does the same at any resolution: each image gets its
  own crop window (224/256 of its side) and its own coin flip, and one ``grid_sample`` call resamples
  the whole batch straight to the model's resolution.
* PCA colour noise: add multiples of the principal components of the RGB pixel values, with
  magnitudes proportional to their eigenvalues times a Gaussian ``alpha`` (mean 0, standard deviation
  0.1) drawn once per image. Only meaningful for colour images (Fashion-MNIST is grey).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import ten_crop


__all__ = ["CROP_FRACTION", "random_crop_flip", "ten_crops", "rgb_principal_components", "pca_colour_noise"]

CROP_FRACTION = 224 / 256  # side of the paper's crops relative to the rescaled image


def random_crop_flip(images: torch.Tensor, resolution: int, *, crop_fraction: float = CROP_FRACTION,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """A random crop (``crop_fraction`` of each side) and a random left-right flip per image,
    resampled to ``resolution`` x ``resolution``. ``images``: float (N, C, H, W)."""
    n = images.shape[0]
    rand = torch.rand(n, 3, generator=generator).to(images.device)
    scale = crop_fraction
    shift = (rand[:, :2] * 2 - 1) * (1 - scale)          # window centre, in [-1, 1] image coordinates
    flip = torch.where(rand[:, 2] < 0.5, -1.0, 1.0)       # -1 mirrors x
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = scale * flip
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(theta, [n, images.shape[1], resolution, resolution], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def ten_crops(images: torch.Tensor, resolution: int) -> list[torch.Tensor]:
    """The paper's test-time crops of a batch (float, N x C x H x W, H and W larger than
    ``resolution``, e.g. 256 px for 224 px crops): the four corner crops, the centre crop, and the
    mirror images of all five. Returns 10 batches of ``resolution`` x ``resolution`` images."""
    return list(ten_crop(images, [resolution, resolution]))


def rgb_principal_components(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (3,) and eigenvectors (3, 3; one per column) of the covariance of RGB pixel values
    over all pixels of ``images`` (float (N, 3, H, W) in [0, 1])."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"PCA colour noise needs RGB images shaped (N, 3, H, W), got {tuple(images.shape)}")
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3)
    return torch.linalg.eigh(torch.cov(pixels.T))


def pca_colour_noise(images: torch.Tensor, eigenvalues: torch.Tensor, eigenvectors: torch.Tensor, *,
                     std: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add ``eigenvectors @ (alpha * eigenvalues)`` to every pixel, alpha ~ N(0, std**2) per image and component."""
    alpha = torch.randn(images.shape[0], 3, generator=generator).to(images) * std
    shift = (alpha * eigenvalues) @ eigenvectors.T       # (N, 3): one RGB offset per image
    return images + shift[:, :, None, None]
