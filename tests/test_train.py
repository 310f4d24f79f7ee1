import json

import pytest
import torch

from alexnet_edu.data import FashionMNIST
from alexnet_edu.models import alexnet
from alexnet_edu.train import History, evaluate, fit


def easy_data(n_train=96, n_test=40):
    """Classes that differ in brightness: learnable in a few steps."""
    g = torch.Generator().manual_seed(0)

    def make(n):
        labels = torch.arange(n) % 4
        images = (labels[:, None, None, None] * 60 + torch.randint(0, 20, (n, 1, 28, 28), generator=g)).to(torch.uint8)
        return images, labels

    return FashionMNIST(*make(n_train), *make(n_test), source="synthetic")


def small_model():
    torch.manual_seed(0)
    return alexnet(num_classes=4, image_size=72, width=0.25, dropout=0.0)


def test_fit_lowers_the_loss_and_records_history(tmp_path):
    # 20 short epochs of 6 steps: AlexNet sits near ln(4) for its first few dozen steps.
    history = fit(small_model(), easy_data(), profile="smoke", epochs=20, batch_size=16, resolution=72,
                  lr=0.02, out=tmp_path, progress=False, device="cpu")
    assert history.epochs == 20
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert history.test_acc[-1] > 0.5
    assert history.device == "cpu" and history.profile == "smoke"
    assert all(v > 0 for v in history.images_per_s)
    saved = History.load(tmp_path / "history.json")
    assert saved == history
    assert json.loads((tmp_path / "history.json").read_text())["settings"]["resolution"] == 72


def test_resume_continues_from_the_saved_epoch(tmp_path):
    data = easy_data()
    full = fit(small_model(), data, profile="smoke", epochs=3, resolution=72, out=tmp_path / "a",
               progress=False, device="cpu")
    # interrupted after 2 epochs, then resumed: the same run as training 3 epochs straight
    fit(small_model(), data, profile="smoke", epochs=2, resolution=72, out=tmp_path / "b", progress=False, device="cpu")
    resumed_model = small_model()
    resumed = fit(resumed_model, data, profile="smoke", epochs=3, resolution=72, out=tmp_path / "b",
                  resume=True, progress=False, device="cpu")
    assert resumed.epochs == 3
    assert resumed.train_loss[:2] == full.train_loss[:2]
    assert resumed.train_loss[2] == pytest.approx(full.train_loss[2], rel=1e-4)
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["history"]["train_loss"] == resumed.train_loss


def test_evaluate_counts_correct_predictions():
    data = easy_data()
    model = small_model()
    acc = evaluate(model, data.test_images, data.test_labels, resolution=72)
    with torch.no_grad():
        model.eval()
        from alexnet_edu.data import to_model_input
        expected = (model(to_model_input(data.test_images, 72)).argmax(1) == data.test_labels).float().mean().item()
    assert acc == pytest.approx(expected)
