"""Report 000: inception-style blocks (3 kernel sizes + a dilated conv), 1x1 reductions, dense head."""
from __future__ import annotations

import torch
import torch.nn as nn

from fashion_core.models.layers import conv_bn, dense


class ConvBlock(nn.Module):
    """Parallel 1x1, 3x3 and 5x5 convs (+ a 3x3 conv with dilation when dilation > 1), concatenated."""

    def __init__(self, c_in: int, filters: int, dilation: int = 1, dropout: float = 0.0):
        super().__init__()
        branches = [conv_bn(c_in, filters, k) for k in (1, 3, 5)]
        if dilation > 1:
            branches.append(conv_bn(c_in, filters, 3, dilation=dilation))
        self.branches = nn.ModuleList(branches)
        self.drop = nn.Dropout(dropout) if dropout else nn.Identity()
        self.out_channels = filters * len(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(torch.cat([b(x) for b in self.branches], 1))


def inception_dilated(dropout: float = 0.3) -> nn.Module:
    b1 = ConvBlock(1, 32)
    b2 = ConvBlock(64, 64, dilation=3, dropout=dropout)
    b3 = ConvBlock(128, 128, dilation=3, dropout=dropout)
    b4 = ConvBlock(256, 256, dilation=3, dropout=dropout)
    return nn.Sequential(
        b1, conv_bn(b1.out_channels, 64, 1), nn.MaxPool2d(2),  # 14x14
        b2, conv_bn(b2.out_channels, 128, 1), nn.MaxPool2d(2),  # 7x7
        b3, conv_bn(b3.out_channels, 256, 1), nn.MaxPool2d(2),  # 3x3
        b4, nn.Flatten(), dense(b4.out_channels * 9, 256, dropout, bn=True),
        dense(256, 128, dropout, bn=True), nn.Linear(128, 10))
