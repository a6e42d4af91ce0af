"""Report 002 (Keras MLPs and small CNNs, Adam, batch 128): parameter counts match it exactly."""
from __future__ import annotations

import torch.nn as nn

from fashion_core.models.registry import register_model
from fashion_core.models.layers import dense


@register_model("MLP baseline: flatten -> softmax layer", "002", 84.60, 7_850)
def mlp_baseline() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 10))


@register_model("MLP + 1 hidden layer (256, ReLU)", "002", 89.18, 203_530)
def mlp_1hidden() -> nn.Module:
    return nn.Sequential(nn.Flatten(), dense(784, 256), nn.Linear(256, 10))


@register_model("MLP 3 hidden (256/128/100) + dropout 0.4", "002", 88.99, 247_766)
def mlp_3hidden_dropout(dropout: float = 0.4) -> nn.Module:
    return nn.Sequential(nn.Flatten(), dense(784, 256, dropout), dense(256, 128, dropout),
                         dense(128, 100, dropout), nn.Linear(100, 10))


@register_model("1 conv (16 3x3) + max-pool + the best MLP", "002", 90.08, 850_038)
def cnn1_mlp(dropout: float = 0.4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Flatten(), dense(16 * 14 * 14, 256, dropout), dense(256, 128, dropout),
        dense(128, 100, dropout), nn.Linear(100, 10))


@register_model("2 conv (16, 32 3x3) + max-pools + 1 hidden (256)", "002", 92.72, 409_034)
def cnn2_mlp(dropout: float = 0.4) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(dropout),
        nn.Flatten(), dense(32 * 7 * 7, 256, dropout), nn.Linear(256, 10))
