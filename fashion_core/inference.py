"""Inference apart from training: the model input, batched logits, accuracy.

Prediction, explanation, calibration and ensembles import this module, never the training loop.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from fashion_core.data import FashionData


def to_input(images_u8: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float in [0, 1]: the input every model takes."""
    return images_u8.float().div_(255).unsqueeze(1)


def autocast(device: torch.device):
    # bf16 on CUDA only: CPU bf16 autocast is slower than fp32 on most CPUs
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


@torch.no_grad()
def infer(model: nn.Module, images_u8: torch.Tensor, batch_size: int = 1000, tta_flip: bool = False,
          device: torch.device | None = None) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 10) float32 logits, batch by batch, in eval mode."""
    device = device or next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images_u8), batch_size):
        x = to_input(images_u8[i:i + batch_size].to(device))
        with autocast(device):
            logits = model(x).float()
            if tta_flip:
                logits = (logits + model(x.flip(-1)).float()) / 2
        out.append(logits)
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in % of (N, 10) logits (or probabilities) against (N,) labels."""
    return (logits.argmax(1) == labels.to(logits.device)).float().mean().item() * 100


def evaluate(model: nn.Module, data: FashionData, tta_flip: bool = False) -> tuple[float, float]:
    """(accuracy %, mean cross-entropy) of model on data."""
    logits = infer(model, data.images, tta_flip=tta_flip)
    return accuracy(logits, data.labels), nn.functional.cross_entropy(logits, data.labels.to(logits.device)).item()
