"""Report 003 (TF, Adam + exponential decay, batch 64, BN everywhere, FC head 128 -> 10).

The report gives layer lists and parameter counts but not every block width; the widths here
are chosen to keep its building blocks and land within 10% of its counts.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from fashion_core.models.layers import conv_bn, dense


def head(n_in: int, hidden: int = 128) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), dense(n_in, hidden), nn.Linear(hidden, 10))


def simple_model_1() -> nn.Module:
    return nn.Sequential(
        conv_bn(1, 8, padding=0), conv_bn(8, 16, padding=0), nn.MaxPool2d(3, 2, padding=1),  # 24 -> 12
        conv_bn(16, 32, padding=0), nn.MaxPool2d(3, 2, padding=1),  # 10 -> 5
        conv_bn(32, 32), head(32 * 5 * 5))


def simple_model_2() -> nn.Module:
    return nn.Sequential(
        conv_bn(1, 16, 7, padding=0), conv_bn(16, 32, 7, padding=0), conv_bn(32, 64, 7, padding=0),
        conv_bn(64, 64, 5, padding=0), conv_bn(64, 128, 3, padding=0), head(128 * 4 * 4))


class InceptionA(nn.Module):
    """Four parallel branches (pool+1x1, 1x1, 1x1->3x3, 1x1->3x3->3x3) concatenated."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        b = c_out // 4
        self.pool = nn.Sequential(nn.AvgPool2d(3, 1, 1), conv_bn(c_in, b, 1))
        self.b1 = conv_bn(c_in, b, 1)
        self.b3 = nn.Sequential(conv_bn(c_in, b, 1), conv_bn(b, b))
        self.b5 = nn.Sequential(conv_bn(c_in, b, 1), conv_bn(b, b), conv_bn(b, b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pool(x), self.b1(x), self.b3(x), self.b5(x)], 1)


class ReductionA(nn.Module):
    """Halve the resolution: max-pool || 3x3/2 conv || 1x1 -> 3x3 -> 3x3/2 conv, concatenated."""

    def __init__(self, c_in: int, n: int, k: int, m: int):
        super().__init__()
        self.pool = nn.MaxPool2d(3, 2)
        self.conv = conv_bn(c_in, n, 3, 2, padding=0)
        self.deep = nn.Sequential(conv_bn(c_in, k, 1), conv_bn(k, k), conv_bn(k, m, 3, 2, padding=0))
        self.out_channels = c_in + n + m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.pool(x), self.conv(x), self.deep(x)], 1)


def inception() -> nn.Module:
    r1 = ReductionA(64, 64, 32, 64)  # 24 -> 11, 192 channels
    r2 = ReductionA(r1.out_channels, 48, 32, 48)  # 11 -> 5, 288 channels
    return nn.Sequential(conv_bn(1, 16, padding=0), conv_bn(16, 16, padding=0), InceptionA(16, 64),
                         r1, r2, conv_bn(r2.out_channels, 48, 1), head(48 * 5 * 5))


class ResBlock(nn.Module):
    """Bottleneck residual block (1x1 -> 3x3 -> 1x1); a 1x1 projection when the width changes."""

    def __init__(self, c_in: int, c_out: int, mid: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(c_in, mid, 1), conv_bn(mid, mid),
                                  nn.Conv2d(mid, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.shortcut = (nn.Identity() if c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


def resnet() -> nn.Module:
    return nn.Sequential(
        conv_bn(1, 16, padding=0), conv_bn(16, 32, padding=0),  # 24x24
        ResBlock(32, 64, 64), ResBlock(64, 64, 64), ResBlock(64, 64, 64), nn.MaxPool2d(3, 2, 1),  # 12
        ResBlock(64, 128, 128), ResBlock(128, 128, 128), ResBlock(128, 128, 128), nn.MaxPool2d(3, 2, 1),  # 6
        head(128 * 6 * 6))


class InceptionResBlock(nn.Module):
    """Inception-ResNet-A: three branches, 1x1 projection back to c, scaled residual add."""

    def __init__(self, c: int, b: int, scale: float = 0.2):
        super().__init__()
        self.b1 = conv_bn(c, b, 1)
        self.b3 = nn.Sequential(conv_bn(c, b, 1), conv_bn(b, b))
        self.b5 = nn.Sequential(conv_bn(c, b, 1), conv_bn(b, b + b // 2), conv_bn(b + b // 2, 2 * b))
        self.proj = nn.Conv2d(4 * b, c, 1)
        self.scale = scale
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat([self.b1(x), self.b3(x), self.b5(x)], 1)
        return self.relu(x + self.scale * self.proj(mixed))


def inception_resnet() -> nn.Module:
    r1 = ReductionA(64, 96, 64, 96)  # 24 -> 11, 256 channels
    r2 = ReductionA(256, 96, 48, 96)  # 11 -> 5, 448 channels
    return nn.Sequential(
        conv_bn(1, 16, padding=0), conv_bn(16, 32, padding=0), conv_bn(32, 64, 1),
        InceptionResBlock(64, 32), InceptionResBlock(64, 32), r1,
        InceptionResBlock(256, 32), InceptionResBlock(256, 32), r2,
        conv_bn(448, 64, 1), head(64 * 5 * 5))
