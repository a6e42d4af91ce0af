"""Small building blocks shared by the architectures (every activation is its own nn.ReLU)."""
from __future__ import annotations

import torch.nn as nn


def conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, padding: int | str = "same",
            dilation: int = 1) -> nn.Sequential:
    """Conv -> BatchNorm -> ReLU; padding 'same'/'valid' like Keras, or an int."""
    if padding == "same" and stride > 1:
        padding = (k - 1) // 2 * dilation
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, stride, padding, dilation=dilation, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def dense(n_in: int, n_out: int, dropout: float = 0.0, bn: bool = False,
          activation: type[nn.Module] = nn.ReLU) -> nn.Sequential:
    """Linear (-> BatchNorm1d) -> activation (ReLU unless given) (-> Dropout)."""
    layers: list[nn.Module] = [nn.Linear(n_in, n_out)]
    if bn:
        layers.append(nn.BatchNorm1d(n_out))
    layers.append(activation())
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)
