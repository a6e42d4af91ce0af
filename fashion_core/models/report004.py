"""Report 004: the tuned AlexNet-like net and the compact VGG-like net (BN, GAP, He init)."""
from __future__ import annotations

import torch.nn as nn

from fashion_core.models.layers import conv_bn, dense


# report 004 asks about ReLU vs PReLU vs ELU; LeakyReLU is the usual fourth. Each is its own module
# per use (Captum's hooks need that).
ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "prelu": nn.PReLU, "elu": nn.ELU}


def alexnet_like(dropout: float = 0.7, kernel: int = 5, filters: tuple = (32, 64), fc: tuple = (256, 128),
                 activation: str = "relu") -> nn.Module:
    if kernel not in (3, 5) or activation not in ACTIVATIONS or len(filters) != 2 or len(fc) != 2:
        raise ValueError("alexnet_like: kernel 3 or 5, two filters, two fc widths, activation one of "
                         f"{', '.join(ACTIVATIONS)}")
    act = ACTIVATIONS[activation]
    (c1, c2), (f1, f2) = filters, fc
    return nn.Sequential(
        nn.Conv2d(1, c1, kernel, padding=kernel // 2), act(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, kernel, padding=kernel // 2), act(), nn.MaxPool2d(2),
        nn.Flatten(), dense(c2 * 7 * 7, f1, dropout, activation=act), dense(f1, f2, dropout, activation=act),
        nn.Linear(f2, 10))


def vgg_like(dropout: float = 0.2) -> nn.Module:
    return nn.Sequential(
        conv_bn(1, 32), conv_bn(32, 32), nn.MaxPool2d(2), nn.Dropout(dropout),
        conv_bn(32, 64), conv_bn(64, 64), nn.MaxPool2d(2), nn.Dropout(dropout),
        conv_bn(64, 96), conv_bn(96, 96), nn.Dropout(dropout),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(96, 10))
