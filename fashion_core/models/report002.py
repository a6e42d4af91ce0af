"""Report 002 (Keras MLPs and small CNNs, Adam, batch 128): parameter counts match it exactly."""
from __future__ import annotations

import torch.nn as nn

from fashion_core.models.layers import dense


def mlp_baseline() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


def mlp_1hidden() -> nn.Module:
    return nn.Sequential(nn.Flatten(), dense(784, 256), nn.Linear(256, 10))


def mlp_3hidden_dropout(dropout: float = 0.4) -> nn.Module:
    return nn.Sequential(nn.Flatten(), dense(784, 256, dropout), dense(256, 128, dropout),
                         dense(128, 100, dropout), nn.Linear(100, 10))


def cnn1_mlp(dropout: float = 0.4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Flatten(), dense(16 * 14 * 14, 256, dropout), dense(256, 128, dropout),
        dense(128, 100, dropout), nn.Linear(100, 10))


def cnn2_mlp(dropout: float = 0.4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Flatten(), dense(32 * 7 * 7, 256, dropout), nn.Linear(256, 10))
