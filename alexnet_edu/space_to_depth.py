"""conv1 as a space-to-depth convolution: the same numbers, computed the way a GPU likes.

AlexNet's first layer slides 96 kernels of 11x11 over a 1-channel image with stride 4. On a GPU
that is awkward twice over: a 1-channel tensor cannot really be channels_last (for C = 1,
``x.contiguous(memory_format=torch.channels_last)`` keeps the NCHW strides, so cuDNN converts
layouts on every step), and an 11x11, stride-4 kernel with one input channel has little work per
memory read.

Space-to-depth rewrites it exactly. Cut the (padded) image into 4x4 blocks and stack each block's
16 pixels as 16 channels (``F.pixel_unshuffle(x, 4)``); pad the kernel with zeros to 12x12 and
cut it the same way, into 16 channels of 3x3. Then

    conv(x, w, stride=4)[i, j] = sum_{a, b < 3} sum_{p, q < 4} w[4a + p, 4b + q] * x[4(i + a) + p, 4(j + b) + q]
                               = conv(unshuffle(x), unshuffle(w), stride=1)[i, j]

because pixel (4(i + a) + p, 4(j + b) + q) of the image is pixel (i + a, j + b) of channel
4p + q of the unshuffled image. The result is a 3x3, stride-1 convolution over 16 channels: a shape
cuDNN has fast channels_last kernels for. The weight stays the (96, 1, 11, 11) parameter, padded
and reshaped on the fly, so initialisation, checkpoints and kernel pictures do not change.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SpaceToDepthConv2d", "space_to_depth_conv2d"]


def space_to_depth_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                          stride: int, padding: int) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, stride, padding)`` for a square kernel, computed as a stride-1
    convolution over ``pixel_unshuffle``d input (see the module's docstring)."""
    out_channels, in_channels, k, _ = weight.shape
    s = stride
    taps = -(-k // s)                       # kernel side in blocks: ceil(11 / 4) = 3
    height, width = x.shape[-2:]
    out_h = (height + 2 * padding - k) // s + 1
    out_w = (width + 2 * padding - k) // s + 1
    # The padded input, cut (or extended with zeros) to exactly the rows and columns the output
    # reads, s * (out - 1) + s * taps of them, a whole number of s x s blocks. Negative padding crops.
    x = F.pad(x, (padding, s * (out_w - 1 + taps) - width - padding,
                  padding, s * (out_h - 1 + taps) - height - padding))
    blocks = F.pixel_unshuffle(x, s)                                  # N, C*s*s, H/s, W/s
    w = F.pad(weight, (0, s * taps - k, 0, s * taps - k))            # zeros: 11x11 -> 12x12
    w = w.reshape(out_channels, in_channels, taps, s, taps, s)       # (o, c, a, p, b, q)
    w = w.permute(0, 1, 3, 5, 2, 4).reshape(out_channels, in_channels * s * s, taps, taps)
    if x.is_cuda:
        blocks = blocks.contiguous(memory_format=torch.channels_last)
        w = w.contiguous(memory_format=torch.channels_last)
    return F.conv2d(blocks, w, bias)


class SpaceToDepthConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (same parameters, same state-dict keys, same results) that computes itself
    as :func:`space_to_depth_conv2d` on CUDA, where that was measured faster; elsewhere it is an
    ordinary convolution."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_cuda:
            return super().forward(x)
        return space_to_depth_conv2d(x, self.weight, self.bias, self.stride[0], self.padding[0])
