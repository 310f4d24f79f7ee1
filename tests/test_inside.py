"""Looking inside: feature maps, last-hidden-layer features, neighbours, kernel spectra, and the explorers."""

import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from alexnet_edu.data import to_model_input  # noqa: E402
from alexnet_edu.inside import (conv_layer_names, feature_maps, hidden_features, kernel_spectrum,  # noqa: E402
                                nearest_neighbours)
from alexnet_edu.models import alexnet  # noqa: E402
from alexnet_edu.widgets import _example_of, draw_kernel, feature_map_explorer, kernel_explorer  # noqa: E402

CLASSES = [f"class {i}" for i in range(10)]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return alexnet(image_size=96).eval()


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(1)
    return torch.randint(0, 256, (30, 1, 28, 28), dtype=torch.uint8), torch.arange(30) % 10


def test_conv_layer_names_point_at_the_activation_after_each_convolution(model):
    names = conv_layer_names(model)
    assert list(names) == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    for index in names.values():
        assert isinstance(model.features[index - 1], torch.nn.Conv2d)
        assert isinstance(model.features[index], torch.nn.ReLU)


def test_feature_maps_have_the_architecture_shapes_and_match_the_network():
    torch.manual_seed(0)
    net = alexnet()
    x = torch.randn(2, 1, 224, 224)
    maps = feature_maps(net, x)
    assert {k: tuple(v.shape) for k, v in maps.items()} == {
        "conv1": (2, 96, 54, 54), "conv2": (2, 256, 26, 26), "conv3": (2, 384, 12, 12),
        "conv4": (2, 384, 12, 12), "conv5": (2, 256, 12, 12)}
    with torch.no_grad():
        expected = net.features[: conv_layer_names(net)["conv5"] + 1](x)
    torch.testing.assert_close(maps["conv5"], expected)
    assert (maps["conv1"] >= 0).all(), "maps are taken after the ReLU"


def test_hidden_features_are_fc7_after_its_relu(model, images):
    pictures, _ = images
    features = hidden_features(model, pictures, resolution=96, batch_size=7)   # several chunks
    assert features.shape == (30, 4096) and (features >= 0).all()
    with torch.no_grad():
        logits = model(to_model_input(pictures, 96))
    torch.testing.assert_close(model.classifier[-1](features), logits, rtol=1e-4, atol=1e-4)


def test_hidden_features_of_fc6_feed_fc7(model, images):
    pictures, _ = images
    fc6 = hidden_features(model, pictures, resolution=96, batch_size=7, layer="fc6")
    assert fc6.shape == (30, 4096) and (fc6 >= 0).all()
    fc7 = hidden_features(model, pictures, resolution=96)
    with torch.no_grad():
        torch.testing.assert_close(model.classifier[3:6](fc6), fc7)


def test_nearest_neighbours_agree_with_a_brute_force_search():
    torch.manual_seed(0)
    queries, pool = torch.randn(5, 8), torch.randn(40, 8)
    found = nearest_neighbours(queries, pool, k=3)
    for q, row in zip(queries, found):
        distances = ((pool - q) ** 2).sum(1)
        assert row.tolist() == distances.argsort()[:3].tolist()
    assert nearest_neighbours(pool[:4], pool, k=1).flatten().tolist() == [0, 1, 2, 3], "a point is its own neighbour"


def test_kernel_spectrum_finds_a_stripe_detectors_orientation_and_frequency():
    size, cycles = 33, 3
    x = torch.arange(11, dtype=torch.float32)
    vertical_stripes = torch.cos(2 * math.pi * cycles * x / 11).expand(11, 11)   # varies along columns only
    spectrum = kernel_spectrum(vertical_stripes, size)
    assert spectrum.shape == (size, size)
    row, col = divmod(int(spectrum.argmax()), size)
    assert row == size // 2, "all the energy lies on the horizontal-frequency axis"
    assert abs(abs(col - size // 2) - cycles * size / 11) <= 1, "at the stripes' frequency"
    blob = torch.ones(11, 11)
    assert int(kernel_spectrum(blob, size).argmax()) == (size // 2) * size + size // 2, "a blob keeps zero frequency"


def test_example_of_picks_the_nth_image_of_a_class_and_clamps():
    labels = torch.tensor([3, 1, 3, 0, 3])
    assert _example_of(labels, CLASSES, "class 3", 0) == 0
    assert _example_of(labels, CLASSES, "class 3", 2) == 4
    assert _example_of(labels, CLASSES, "class 3", 9) == 4
    assert _example_of(labels, CLASSES, "class 1", 5) == 1


def test_kernel_explorer_draws_kernel_spectrum_image_and_response(model, images):
    pictures, labels = images
    plt.close("all")
    explorer = kernel_explorer(model, pictures, labels, CLASSES, 96)
    explorer.children[0].value = 17               # the kernel slider redraws
    figure = plt.figure(plt.get_fignums()[-1])
    titles = [ax.get_title() for ax in figure.axes]
    assert titles[0] == "conv1 kernel #17 (11x11)"
    torch.testing.assert_close(torch.as_tensor(figure.axes[0].images[0].get_array()),
                               model.features[0].weight[17, 0].detach())
    assert titles[3] == "its feature map (22x22)"   # (96 + 2 - 11) // 4 + 1
    plt.close("all")


def test_draw_kernel_replaces_what_the_axes_showed_so_a_recording_can_step_through_kernels(model, images):
    pictures, _ = images
    fig, axes = plt.subplots(1, 4)
    draw_kernel(axes, model, 3, pictures[0], 96, "Ankle boot")
    draw_kernel(axes, model, 5, pictures[1], 96, "Ankle boot")
    assert [len(ax.images) for ax in axes] == [1, 1, 1, 1]          # redrawn, not stacked
    assert [ax.get_title() for ax in axes] == ["conv1 kernel #5 (11x11)", "frequencies it passes (|FFT|)",
                                               "a test image: Ankle boot", "its feature map (22x22)"]
    kernel = model.features[0].weight[5, 0].detach()
    torch.testing.assert_close(torch.as_tensor(axes[1].images[0].get_array()), kernel_spectrum(kernel))
    torch.testing.assert_close(torch.as_tensor(axes[2].images[0].get_array()), pictures[1, 0])
    with torch.no_grad():
        expected = torch.relu(model.features[0](to_model_input(pictures[1:2], 96)))[0, 5]
    torch.testing.assert_close(torch.as_tensor(axes[3].images[0].get_array()), expected)
    plt.close(fig)


def test_feature_map_explorer_shows_sixteen_maps_of_the_chosen_layer(model, images):
    pictures, labels = images
    plt.close("all")
    explorer = feature_map_explorer(model, pictures, labels, CLASSES, 96)
    explorer.children[2].value = "conv3"
    figure = plt.figure(plt.get_fignums()[-1])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title().startswith("conv")]
    assert sorted(titles, key=lambda t: int(t.split("#")[1])) == [f"conv3 #{c}" for c in range(16)]
    plt.close("all")


def test_feature_map_explorer_shows_only_the_maps_a_narrow_layer_has(images):
    pictures, labels = images
    torch.manual_seed(0)
    narrow = alexnet(image_size=96, width=0.1).eval()     # conv1 has 10 maps, fewer than 16 panels
    plt.close("all")
    explorer = feature_map_explorer(narrow, pictures, labels, CLASSES, 96)
    explorer.children[3].value = 64                         # first channel beyond the layer's end
    figure = plt.figure(plt.get_fignums()[-1])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title().startswith("conv")]
    assert sorted(titles, key=lambda t: int(t.split("#")[1])) == [f"conv1 #{c}" for c in range(10)]
    plt.close("all")


def test_kernel_explorer_shows_conv1_through_the_models_own_activation(images):
    pictures, labels = images
    torch.manual_seed(0)
    tanh_net = alexnet(image_size=96, activation="tanh").eval()
    plt.close("all")
    kernel_explorer(tanh_net, pictures, labels, CLASSES, 96)
    shown = torch.as_tensor(plt.figure(plt.get_fignums()[-1]).axes[3].images[0].get_array())
    with torch.no_grad():
        expected = torch.tanh(tanh_net.features[0](to_model_input(pictures[:1], 96)))[0, 0]
    torch.testing.assert_close(shown, expected)
    assert (shown < 0).any(), "tanh maps keep their negative values"
    plt.close("all")


def test_without_widgets_an_explorer_draws_its_first_view_once(model, images, monkeypatch):
    """What an autograder gets (ALEXNET_EDU_NO_WIDGETS=1): no widget, the first layer's maps drawn."""
    monkeypatch.setenv("ALEXNET_EDU_NO_WIDGETS", "1")
    pictures, labels = images
    plt.close("all")
    assert feature_map_explorer(model, pictures, labels, CLASSES, 96) is None
    assert len(plt.get_fignums()) == 1
    titles = [ax.get_title() for ax in plt.figure(plt.get_fignums()[0]).axes if ax.get_title().startswith("conv")]
    assert sorted(titles, key=lambda t: int(t.split("#")[1])) == [f"conv1 #{c}" for c in range(16)]
    plt.close("all")
