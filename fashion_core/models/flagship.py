"""Our flagship: a short conv-pool-BN stack in the style of airbench, sized for accuracy per second.

Each stage is conv -> max-pool -> BN -> ReLU -> conv -> BN -> ReLU; the head is a global max-pool
and a linear layer. `flagship` is the fast default, `flagship_wide` trades speed for accuracy.
"""
from __future__ import annotations

import torch.nn as nn

from fashion_core.models.layers import conv_bn


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
                         nn.BatchNorm2d(c_out), nn.ReLU(), conv_bn(c_out, c_out))


def _net(widths: tuple[int, int, int, int]) -> nn.Module:
    stem, *stages = widths
    layers = [conv_bn(1, stem)]
    for c_in, c_out in zip(widths[:-1], stages):
        layers.append(_stage(c_in, c_out))  # 28 -> 14 -> 7 -> 3
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(widths[-1], 10, bias=False)]
    return nn.Sequential(*layers)


def flagship(widths: tuple[int, int, int, int] = (24, 24, 48, 96)) -> nn.Module:
    return _net(tuple(widths))


def flagship_wide(widths: tuple[int, int, int, int] = (32, 64, 128, 256)) -> nn.Module:
    return _net(tuple(widths))


def quick(stem: int = 16, widths: tuple[int, ...] = (32, 64, 128), extra: tuple[int, ...] = (0, 0, 0)) -> nn.Module:
    """The quick model, for about a minute of CPU: the stem's 3x3 conv sees the full 28x28 image and is
    max-pooled at once to 14x14, so no wide conv runs at full resolution (the flagship's first stage
    costs more than a third of its work there). Then one conv-pool-BN stage per width (14 -> 7 -> 3),
    each with `extra` more conv-BN-ReLU layers, and the flagship's head."""
    layers = [conv_bn(1, stem), nn.MaxPool2d(2)]
    c_in = stem
    for c_out, more in zip(widths, extra, strict=True):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(c_out), nn.ReLU()]
        layers += [conv_bn(c_out, c_out) for _ in range(more)]
        c_in = c_out
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c_in, 10, bias=False)]
    return nn.Sequential(*layers)
