"""Classical baselines from before deep learning: pixels or HOG features into a scikit-learn classifier."""

from __future__ import annotations

import time

import numpy as np
import torch
from skimage.feature import hog

__all__ = ["MAX_TRAIN_IMAGES", "pixel_features", "hog_features", "score"]

# The most training images the book gives these classifiers, in every profile. An SVM's fitting time
# grows at least with the square of the training set (scikit-learn's SVC documentation): on all 60,000
# images, on 2 cores, logistic regression on pixels took 559 s and an RBF SVM 219 s to fit plus 48 s to
# predict (shared notes); a GPU does not help.
MAX_TRAIN_IMAGES = 12_000


def pixel_features(images: torch.Tensor) -> np.ndarray:
    """uint8 (N, 1, 28, 28) → float (N, 784) in [0, 1]: each image as one long vector."""
    return images.reshape(len(images), -1).cpu().numpy().astype(np.float32) / 255


def hog_features(images: torch.Tensor, *, orientations: int = 9, pixels_per_cell: int = 4,
                 cells_per_block: int = 2) -> np.ndarray:
    """Histograms of oriented gradients (Dalal & Triggs, 2005), one row per image.

    Each ``pixels_per_cell`` square cell gets a histogram of gradient directions in ``orientations``
    bins; histograms are normalised over blocks of ``cells_per_block`` x ``cells_per_block`` cells.
    """
    return np.stack([
        hog(img, orientations=orientations, pixels_per_cell=(pixels_per_cell,) * 2,
            cells_per_block=(cells_per_block,) * 2)
        for img in images[:, 0].cpu().numpy()
    ]).astype(np.float32)


def score(classifier, x_train: np.ndarray, y_train, x_test: np.ndarray, y_test) -> dict:
    """Fit ``classifier`` and return its test accuracy and the seconds spent fitting and predicting
    (wall time, to the millisecond: further digits are noise)."""
    y_train, y_test = _numpy(y_train), _numpy(y_test)
    start = time.perf_counter()
    classifier.fit(x_train, y_train)
    fitted = time.perf_counter()
    accuracy = float((classifier.predict(x_test) == y_test).mean())
    predicted = time.perf_counter()
    return {"accuracy": accuracy, "fit seconds": round(fitted - start, 3),
            "predict seconds": round(predicted - fitted, 3)}


def _numpy(labels) -> np.ndarray:
    return labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
