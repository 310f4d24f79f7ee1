"""The classical baselines: pixel and HOG features, and scoring a scikit-learn classifier on them."""

import numpy as np
import torch
from skimage.feature import hog
from sklearn.linear_model import LogisticRegression

from alexnet_edu.baselines import hog_features, pixel_features, score


def test_pixel_features_are_one_row_of_784_values_in_0_1_per_image():
    images = torch.zeros(3, 1, 28, 28, dtype=torch.uint8)
    images[1, 0, 0, 0] = 255
    features = pixel_features(images)
    assert features.shape == (3, 784) and features.dtype == np.float32
    assert features[1, 0] == 1.0 and features.sum() == 1.0


def test_hog_features_are_skimages_hog_per_image():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    features = hog_features(images)
    # 7x7 cells of 4 px, 6x6 blocks of 2x2 cells, 9 orientations each
    assert features.shape == (2, 6 * 6 * 2 * 2 * 9)
    expected = hog(images[1, 0].numpy(), orientations=9, pixels_per_cell=(4, 4), cells_per_block=(2, 2))
    np.testing.assert_allclose(features[1], expected, rtol=1e-6)


def test_score_reports_test_accuracy_and_times_to_the_millisecond():
    rng = np.random.default_rng(0)
    labels = np.arange(200) % 2
    x = rng.normal(size=(200, 5)) + 4 * labels[:, None]          # two well-separated clouds
    result = score(LogisticRegression(), x[:100], torch.tensor(labels[:100]), x[100:], labels[100:])
    assert result["accuracy"] == 1.0
    for key in ("fit seconds", "predict seconds"):
        assert result[key] >= 0 and round(result[key], 3) == result[key]
