"""Loss functions: cross-entropy (with label smoothing), weighted CE (report 003) and focal loss, and
LogitNorm, which any of them can train through."""
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


def normalise_logits(logits: torch.Tensor, tau: float) -> torch.Tensor:
    """LogitNorm (Wei et al. 2022, "Mitigating Neural Network Overconfidence with Logit
    Normalization"): each row of logits rescaled to length 1/tau before the loss. Cross-entropy can
    then only be lowered by pointing the logits the right way, not by making them longer, which is
    how a plain network ends up near-certain on inputs unlike its training data. Training only:
    predictions use the raw logits, and the run's temperature is fitted on those."""
    logits = logits.float()
    return logits / (tau * logits.norm(dim=1, keepdim=True).clamp_min(1e-7))
