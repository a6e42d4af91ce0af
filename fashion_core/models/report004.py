"""Report 004: the tuned AlexNet-like net and the compact VGG-like net (BN, GAP, He init)."""
from __future__ import annotations

import torch.nn as nn

from fashion_core.models.registry import register_model
from fashion_core.models.layers import conv_bn, dense


@register_model("AlexNet-like: 5x5 convs 32/64, FC 256/128, dropout 0.7", "004", 74.46)
def alexnet_like(dropout: float = 0.7) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), dense(64 * 7 * 7, 256, dropout), dense(256, 128, dropout), nn.Linear(128, 10))


@register_model("VGG-like: 3x3 conv pairs 32/64/96 with BN, dropout, global average pooling",
                "004", 94.05, 198_351, notes="report trains it with Adam, batch 32, 100 epochs, "
                "horizontal flip + random crop, He-normal init")
def vgg_like(dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(
        conv_bn(1, 32), conv_bn(32, 32), nn.MaxPool2d(2), nn.Dropout(dropout),
        conv_bn(32, 64), conv_bn(64, 64), nn.MaxPool2d(2), nn.Dropout(dropout),
        conv_bn(64, 96), conv_bn(96, 96), nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10))
