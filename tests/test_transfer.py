"""alexnet_edu.transfer: the digits task, the probes, fine-tuning's frozen half, torchvision's weights."""

import urllib.error
from collections import Counter

import pytest
import torch
import torchvision
from torch import nn

from alexnet_edu import alexnet, fit, get_profile
from alexnet_edu.reference import save_conv_weights
from alexnet_edu.transfer import (GreyToImageNet, ImageNetAlexNet, fine_tune, imagenet_alexnet, layer_features,
                                  linear_probe, load_digits_task, pixel_probe, pretrained_network, repeat_to)


@pytest.fixture(scope="module")
def digits():
    return load_digits_task()


def test_the_digits_are_split_once_into_pool_validation_and_test(digits):
    from sklearn.datasets import load_digits
    task, tuning = digits
    assert (len(task.train_labels), len(tuning.test_labels), len(task.test_labels)) == (1000, 300, 497)
    assert torch.equal(task.train_images, tuning.train_images)   # the same pool
    assert task.train_images.dtype == torch.uint8 and task.train_images.shape[1:] == (1, 8, 8)
    assert task.train_images.max() == 255
    # the three parts together are the 1,797 images, each exactly once (as a multiset of image+label)
    def items(images, labels):
        return Counter((img.numpy().tobytes(), int(y)) for img, y in zip(images, labels))
    parts = (items(task.train_images, task.train_labels) + items(tuning.test_images, tuning.test_labels)
             + items(task.test_images, task.test_labels))
    raw = load_digits()
    full = torch.tensor(raw.images * (255 / 16)).round().to(torch.uint8).unsqueeze(1)
    assert parts == items(full, torch.tensor(raw.target))
    for labels in (tuning.test_labels, task.test_labels):
        counts = labels.bincount(minlength=10)
        assert counts.max() - counts.min() <= 1, "class-balanced"
    assert task.train_labels.bincount(minlength=10).min() >= 90   # the rest: about 100 of each digit


def test_repeat_to_gives_every_training_set_the_same_number_of_examples(digits):
    task, _ = digits
    small = task.subset(20, None)
    repeated = repeat_to(small, 64)
    assert len(repeated.train_labels) == 80          # 4 copies: the smallest number reaching 64
    assert torch.equal(repeated.train_images[20:40], small.train_images)
    assert torch.equal(repeated.test_images, small.test_images)
    assert len(repeat_to(small, 5).train_labels) == 20   # never fewer than one copy
    with pytest.raises(ValueError, match="no training images"):
        repeat_to(task.subset(0, None), 64)


def test_layer_features_have_one_row_per_image_and_the_documented_width(digits):
    task, _ = digits
    model = alexnet(image_size=96)
    images = task.train_images[:5]
    widths = {layer: layer_features(model, images, 96, layer).shape for layer in
              ("conv1", "conv2", "conv3", "conv4", "conv5", "pool5")}
    assert widths == {"conv1": (5, 96 * 4), "conv2": (5, 256 * 4), "conv3": (5, 384 * 4),
                      "conv4": (5, 384 * 4), "conv5": (5, 256 * 4), "pool5": (5, 256 * 1 * 1)}
    with pytest.raises(ValueError, match="choose one of conv1"):
        layer_features(model, images, 96, "fc7")


def test_pretrained_network_takes_the_saved_convolutions_and_a_fresh_classifier(tmp_path):
    torch.manual_seed(1)
    trained = alexnet(image_size=224)           # the reference run is saved at 224 px
    save_conv_weights(trained, tmp_path / "convs.pt")
    torch.manual_seed(2)
    net = pretrained_network(tmp_path / "convs.pt", 96)
    for saved, loaded in zip(trained.features.parameters(), net.features.parameters()):
        torch.testing.assert_close(loaded, saved.half().float())   # fp16 on disk
    assert net.classifier[0].in_features == 256    # sized for 96 px, not 224
    assert net(torch.zeros(2, 1, 96, 96)).shape == (2, 10)


def test_the_probes_learn_the_digits(digits):
    task, _ = digits
    torch.manual_seed(0)
    few = task.subset(100, None)
    assert linear_probe(alexnet(image_size=96), few, 96, "conv1") > 0.5   # chance is 0.1
    assert pixel_probe(task) > 0.9


def test_a_frozen_features_stack_does_not_move_and_fine_tune_unfreezes_it(digits):
    task, _ = digits
    profile = get_profile("smoke")
    small = task.subset(20, None)
    torch.manual_seed(0)
    model = alexnet(image_size=96)
    conv = model.features[0].weight.detach().clone()
    fc = model.classifier[0].weight.detach().clone()
    model.features.requires_grad_(False)
    fit(model, repeat_to(small, 32), profile=profile, epochs=1, progress=False, describe=False, live_plot=False)
    assert torch.equal(model.features[0].weight, conv), "no gradient, no momentum, no weight decay"
    assert not torch.equal(model.classifier[0].weight, fc)
    model.features.requires_grad_(True)
    accuracy = fine_tune(model, small, profile, 32)
    assert 0 <= accuracy <= 1
    assert all(p.requires_grad for p in model.parameters())
    assert not torch.equal(model.features[0].weight, conv), "the second half trains the convolutions"


def test_grey_to_imagenet_makes_three_normalised_colour_channels():
    from alexnet_edu.data import MEAN, STD
    grey = torch.tensor([0.0, 0.5, 1.0]).view(3, 1, 1, 1)          # pixel values
    x = (grey - MEAN) / STD                                          # as the book feeds them
    out = GreyToImageNet()(x)
    assert out.shape == (3, 3, 1, 1)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    torch.testing.assert_close(out[:, :, 0, 0], (grey.view(3, 1) - mean) / std)


def test_imagenet_alexnet_loads_saved_weights_and_fits_the_book(tmp_path):
    torch.manual_seed(0)
    stand_in = torchvision.models.alexnet(weights=None)   # torchvision's architecture, random weights
    torch.save(stand_in.state_dict(), tmp_path / "alexnet.pth")
    net = imagenet_alexnet(path=tmp_path / "alexnet.pth")
    assert isinstance(net, ImageNetAlexNet)
    torch.testing.assert_close(net.features[1].weight, stand_in.features[0].weight)
    assert isinstance(net.features[0], GreyToImageNet)
    assert net(torch.zeros(2, 1, 96, 96)).shape == (2, 10)
    convs = [m.out_channels for m in net.features if isinstance(m, nn.Conv2d)]
    assert convs == [64, 192, 384, 256, 256]            # the "one weird trick" widths, not 2012's


def test_imagenet_alexnet_says_why_when_the_weights_cannot_be_had(tmp_path, monkeypatch):
    def offline(**kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr(torchvision.models, "alexnet", offline)
    with pytest.warns(UserWarning, match="Offline"):
        assert imagenet_alexnet() is None
    monkeypatch.undo()
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="could not be loaded"):
        assert imagenet_alexnet(path=tmp_path / "broken.pth") is None
