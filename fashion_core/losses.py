"""Loss functions: cross-entropy (with label smoothing), weighted CE (report 003) and focal loss."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fashion_core.config import TrainConfig


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): CE scaled by (1 - p_t)^gamma. With one alpha for all ten classes
    (report 003's setting, 0.25) alpha only scales the whole loss; it is not a per-class balance."""

    def __init__(self, gamma: float = 2.0, alpha: float = 0.25, label_smoothing: float = 0.0):
        super().__init__()
        self.gamma, self.alpha, self.label_smoothing = gamma, alpha, label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, reduction="none", label_smoothing=self.label_smoothing)
        p_t = logits.float().softmax(-1).gather(1, target[:, None]).squeeze(1)
        loss = (1 - p_t).pow(self.gamma) * ce
        if self.alpha:
            loss = self.alpha * loss
        return loss.mean()


def make_loss(cfg: TrainConfig, device: torch.device | str = "cpu") -> nn.Module:
    if cfg.loss == "focal":
        return FocalLoss(cfg.focal_gamma, cfg.focal_alpha, cfg.label_smoothing)
    weight = torch.tensor(cfg.class_weights, device=device) if cfg.loss == "weighted_ce" else None
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
