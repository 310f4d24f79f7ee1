import pytest
import torch
from torch import nn

from alexnet_edu.data import to_model_input
from alexnet_edu.models import LocalResponseNorm, alexnet, alexnet_paper, conv_output_size, lenet
from alexnet_edu.summary import summary


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_parameter_counts_are_exact():
    assert n_params(alexnet()) == 46_764_746
    assert n_params(alexnet_paper()) == 60_965_224
    assert n_params(lenet()) == 61_706
    # At 96 px the conv stack ends in 256x1x1, so the first Linear has 256 inputs, not 6,400.
    assert n_params(alexnet(image_size=96)) == 46_764_746 - (6400 - 256) * 4096


def test_output_shapes():
    assert alexnet()(torch.zeros(2, 1, 224, 224)).shape == (2, 10)
    assert alexnet_paper()(torch.zeros(2, 3, 227, 227)).shape == (2, 1000)
    assert alexnet_paper(num_classes=10, in_channels=1)(torch.zeros(2, 1, 227, 227)).shape == (2, 10)
    assert lenet()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_every_layer_shape_of_alexnet_at_224():
    table = summary(alexnet(), (1, 1, 224, 224))
    assert table["output shape"].tolist()[:-1] == [
        "96x54x54", "96x54x54", "96x26x26",
        "256x26x26", "256x26x26", "256x12x12",
        "384x12x12", "384x12x12",
        "384x12x12", "384x12x12",
        "256x12x12", "256x12x12", "256x5x5",
        "4096", "4096", "4096",
        "4096", "4096", "4096",
        "10",
    ]
    assert table["parameters"].iloc[-1] == 46_764_746
    # torch's FLOP counter: 1.876 GFLOP per image, nearly all in the convolutions.
    assert table["FLOPs"].iloc[-1] == 1_876_292_352
    assert table.loc[table["type"].str.endswith("Conv2d"), "FLOPs"].sum() > 0.95 * table["FLOPs"].iloc[-1]


def test_paper_network_shapes_match_figure_2():
    table = summary(alexnet_paper(), (1, 3, 227, 227))
    convs = table.loc[table["type"] == "Conv2d", "output shape"].tolist()
    assert convs == ["96x55x55", "256x27x27", "384x13x13", "384x13x13", "256x13x13"]
    grouped = [m.groups for m in alexnet_paper().features if isinstance(m, nn.Conv2d)]
    assert grouped == [1, 2, 1, 2, 2]   # conv3 is the one that reads both GPUs' maps
    one_gpu = alexnet_paper(two_gpus=False)
    assert [m.groups for m in one_gpu.features if isinstance(m, nn.Conv2d)] == [1] * 5
    assert n_params(one_gpu) == 60_965_224 + 256 * 48 * 25 + 384 * 192 * 9 + 256 * 192 * 9


def test_conv_output_size_formula():
    assert conv_output_size(224, 11, 4, 1) == 54
    assert conv_output_size(227, 11, 4, 0) == 55
    assert conv_output_size(54, 3, 2) == 26


def lrn_by_the_formula(a, n=5, alpha=1e-4, beta=0.75, k=2.0):
    """b[i] = a[i] / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a[j]^2)^beta, one loop per channel."""
    N = a.shape[1]
    out = torch.empty_like(a)
    for i in range(N):
        lo, hi = max(0, i - n // 2), min(N - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * (a[:, lo : hi + 1] ** 2).sum(1)) ** beta
    return out


@pytest.mark.parametrize("channels", [1, 3, 7, 96])
def test_lrn_matches_the_papers_formula_including_edge_channels(channels):
    torch.manual_seed(0)
    a = torch.randn(2, channels, 4, 4, dtype=torch.float64) * 30  # large, so the normalisation bites
    ours = LocalResponseNorm()(a)
    expected = lrn_by_the_formula(a)
    torch.testing.assert_close(ours, expected)
    assert not torch.allclose(ours, a / 2 ** 0.75)  # the neighbours really matter


def test_torch_lrn_uses_alpha_over_n():
    torch.manual_seed(0)
    a = torch.randn(2, 96, 5, 5, dtype=torch.float64) * 30
    paper = LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)(a)
    torch_same = nn.LocalResponseNorm(5, alpha=5 * 1e-4, beta=0.75, k=2.0)(a)
    torch_naive = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    torch.testing.assert_close(paper, torch_same)
    assert not torch.allclose(paper, torch_naive)


def test_too_small_input_says_the_minimum():
    assert alexnet(image_size=65)(torch.zeros(1, 1, 65, 65)).shape == (1, 10)
    model = alexnet()
    with pytest.raises(ValueError, match=r"smallest input .* 65x65"):
        model(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="too small.*at least 65"):
        alexnet(image_size=64)


def test_input_of_another_size_than_built_for_says_how_to_fix_it():
    with pytest.raises(ValueError, match=r"built for 224x224 .* image_size=96"):
        alexnet()(torch.zeros(1, 1, 96, 96))


def test_wrong_channel_count_says_what_to_do():
    with pytest.raises(ValueError, match="expects 1-channel images, got 3"):
        alexnet()(torch.zeros(1, 3, 224, 224))
    with pytest.raises(ValueError, match="in_channels=1"):
        alexnet_paper()(torch.zeros(1, 1, 227, 227))
    with pytest.raises(ValueError, match="in_channels=3"):
        alexnet()(torch.zeros(1, 3, 224, 224))
    assert alexnet(in_channels=3)(torch.zeros(1, 3, 224, 224)).shape == (1, 10)


def test_raw_uint8_images_say_how_to_convert_them():
    images = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"got torch.uint8: convert .*data\.to_model_input\(images, resolution\)"):
        alexnet()(images)
    assert alexnet()(to_model_input(images, 224)).shape == (2, 10)


def test_switches_change_the_network():
    assert sum(isinstance(m, nn.Tanh) for m in alexnet(activation="tanh").modules()) == 7
    assert sum(isinstance(m, LocalResponseNorm) for m in alexnet(lrn=True).modules()) == 2
    assert all(m.p == 0.0 for m in alexnet(dropout=0.0).modules() if isinstance(m, nn.Dropout))
    pools = [m for m in alexnet(overlap_pooling=False).modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2)] * 3
    half = alexnet(width=0.5, image_size=96)
    assert half(torch.zeros(1, 1, 96, 96)).shape == (1, 10)
    assert n_params(half) < n_params(alexnet(image_size=96)) / 3



def test_middle_sets_how_many_3x3_384_channel_layers_sit_between_conv2_and_conv5():
    conv3 = 256 * 384 * 9 + 384          # reads conv2's 256 maps
    conv4 = 384 * 384 * 9 + 384          # each further middle layer reads 384 maps
    conv5, conv5_on_conv2 = 384 * 256 * 9 + 256, 256 * 256 * 9 + 256
    assert conv4 == 1_327_488
    default = n_params(alexnet())
    assert n_params(alexnet(middle=2)) == default == 46_764_746
    assert n_params(alexnet(middle=1)) == default - conv4 == 45_437_258
    assert n_params(alexnet(middle=3)) == default + conv4 == 48_092_234
    assert n_params(alexnet(middle=0)) == default - conv3 - conv4 - conv5 + conv5_on_conv2
    for middle in (0, 1, 3):
        table = summary(alexnet(middle=middle), (1, 1, 224, 224))
        convs = table.loc[table["type"].str.endswith("Conv2d"), "output shape"].tolist()
        # padding 1 keeps 12x12: only the number of layers changes, not the maps or fc6
        assert convs == ["96x54x54", "256x26x26"] + ["384x12x12"] * middle + ["256x12x12"]
        assert table.loc[table["type"] == "Linear", "output shape"].tolist() == ["4096", "4096", "10"]
        assert alexnet(middle=middle)(torch.zeros(2, 1, 224, 224)).shape == (2, 10)
    # at half width and 96 px, as the ablation chapters train
    half = alexnet(image_size=96, width=0.5, middle=3)
    assert half(torch.zeros(2, 1, 96, 96)).shape == (2, 10)
    assert n_params(half) == n_params(alexnet(image_size=96, width=0.5)) + 192 * 192 * 9 + 192


@pytest.mark.parametrize("middle", [-1, 1.5, True, "2"])
def test_middle_must_be_a_whole_number_of_layers(middle):
    with pytest.raises(ValueError, match=r"whole number, 0 or more \(AlexNet has 2"):
        alexnet(middle=middle)


def test_paper_initialisation():
    torch.manual_seed(0)
    model = alexnet_paper()
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [m.bias.detach().mean().item() for m in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert [m.bias.detach().mean().item() for m in linears] == [1.0, 1.0, 0.0]
    assert abs(linears[0].weight.detach().std().item() - 0.01) < 1e-4
