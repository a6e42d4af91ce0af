"""Report 001: a custom 5-layer CNN, ResNet50 from scratch, and ConvNeXt-Tiny (ensemble members).

The torchvision networks are adapted to 1-channel 28x28 input; their activations are replaced by
one non-inplace module per use so Captum's module hooks see each one.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn as nn
from torchvision.models import convnext_tiny as tv_convnext_tiny
from torchvision.models.resnet import Bottleneck, ResNet

from fashion_core.models.layers import conv_bn, dense


def cnn5(dropout: float = 0.1) -> nn.Module:
    return nn.Sequential(
        conv_bn(1, 32), nn.MaxPool2d(2), conv_bn(32, 64), nn.MaxPool2d(2), nn.Dropout(dropout),
        conv_bn(64, 128), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Flatten(), dense(128 * 3 * 3, 256, dropout), nn.Linear(256, 10))


class _Bottleneck(Bottleneck):
    """torchvision's Bottleneck with a separate, non-inplace ReLU for each of its three uses."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.relu = nn.ReLU()
        self.relu2, self.relu3 = nn.ReLU(), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu2(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = self.downsample(x) if self.downsample is not None else x
        return self.relu3(out + identity)


def resnet50() -> nn.Module:
    model = ResNet(_Bottleneck, [3, 4, 6, 3], num_classes=10)
    model.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
    model.relu = nn.ReLU()
    model.maxpool = nn.Identity()
    return model


CONVNEXT_WEIGHTS = "convnext_tiny-983f1562.pth"  # torchvision's ImageNet-1k file name


def convnext_weights_path() -> Path | None:
    """The cached ImageNet weights, if the user has them (nothing is downloaded)."""
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    path = hub / CONVNEXT_WEIGHTS
    return path if path.exists() else None


def convnext_tiny(pretrained: bool = True) -> nn.Module:
    model = tv_convnext_tiny(num_classes=10)
    path = convnext_weights_path() if pretrained else None
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.2")}
        model.load_state_dict(state, strict=False)
    old = model.features[0][0]  # Conv2d(3, 96, 4, stride 4): 28x28 would shrink to 0 by stage 4
    stem = nn.Conv2d(1, 96, 2, 2)
    with torch.no_grad():
        stem.weight.copy_(old.weight[:, :, :2, :2].sum(1, keepdim=True))
        stem.bias.copy_(old.bias)
    model.features[0][0] = stem
    return model
