"""conv1's space-to-depth form computes exactly what the 11x11, stride-4 convolution computes."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alexnet_edu.models import alexnet
from alexnet_edu.space_to_depth import SpaceToDepthConv2d, space_to_depth_conv2d


@pytest.mark.parametrize("size, padding, in_channels", [(224, 1, 1), (96, 1, 1), (65, 1, 1), (227, 0, 3), (100, 2, 1)])
def test_space_to_depth_equals_the_strided_convolution_in_float64(size, padding, in_channels):
    torch.manual_seed(0)
    x = torch.randn(2, in_channels, size, size, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(96, in_channels, 11, 11, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(96, dtype=torch.float64, requires_grad=True)
    direct = F.conv2d(x, weight, bias, stride=4, padding=padding)
    rewritten = space_to_depth_conv2d(x, weight, bias, stride=4, padding=padding)
    assert rewritten.shape == direct.shape
    assert torch.allclose(rewritten, direct, rtol=0, atol=1e-10)
    # and the gradients reach the same (96, in, 11, 11) parameter with the same values
    upstream = torch.randn_like(direct)
    grads_direct = torch.autograd.grad(direct, (x, weight, bias), upstream)
    grads_rewritten = torch.autograd.grad(rewritten, (x, weight, bias), upstream)
    for a, b in zip(grads_direct, grads_rewritten):
        assert torch.allclose(a, b, rtol=0, atol=1e-10)


def test_alexnet_conv1_keeps_the_shape_and_state_dict_of_an_ordinary_convolution():
    model = alexnet()
    conv1 = model.features[0]
    assert isinstance(conv1, SpaceToDepthConv2d) and isinstance(conv1, nn.Conv2d)
    assert conv1.weight.shape == (96, 1, 11, 11)
    plain = nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1)
    plain.load_state_dict(conv1.state_dict())   # same keys, same shapes: old checkpoints load
    x = torch.randn(2, 1, 224, 224)
    assert torch.equal(conv1(x), plain(x))       # on the CPU it is the ordinary convolution


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the space-to-depth path runs on CUDA only")
def test_on_cuda_the_space_to_depth_path_matches_the_plain_convolution():
    torch.manual_seed(0)
    conv1 = SpaceToDepthConv2d(1, 96, kernel_size=11, stride=4, padding=1).cuda().double()
    x = torch.randn(4, 1, 224, 224, dtype=torch.float64, device="cuda")
    assert torch.allclose(conv1(x), F.conv2d(x, conv1.weight, conv1.bias, stride=4, padding=1), atol=1e-10)
